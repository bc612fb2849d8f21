"""Two "nodes" on this machine: two torchrun agents meet through c10d rendezvous on 127.0.0.1.

Each agent is started on its own, as on two machines::

    torchrun --nnodes=2 --nproc_per_node=1 --rdzv_backend=c10d \\
             --rdzv_endpoint=127.0.0.1:PORT --rdzv_id=JOB worker.py

and the 2-process FSDP run they form must train to the losses and weights
of one process with the same global batch.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

_here = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("_fsdp_worker", _here / "_fsdp_worker.py")
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)
_spec = importlib.util.spec_from_file_location("_test_fsdp", _here / "test_fsdp.py")
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)


@pytest.mark.slow
def test_two_nodes_rendezvous_and_train_as_one_process(tmp_path):
    port = common.free_port()
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
        "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=gradwise-test",
        "--max_restarts=0", str(_here / "_fsdp_worker.py"), "multinode", str(tmp_path),
    ]  # fmt: skip
    nodes = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = []
    try:
        for p in nodes:
            outputs.append(p.communicate(timeout=240)[0])
    finally:
        for p in nodes:
            if p.poll() is None:
                p.kill()
    for i, (p, text) in enumerate(zip(nodes, outputs)):
        assert p.returncode == 0, f"node {i} failed:\n{text[-3000:]}"
    got = torch.load(tmp_path / "multinode.pt", weights_only=True)
    assert got["world"] == 2
    ref = worker.mlp_trainer(32, False)  # one process, the global batch 2 × 16
    ref.fit(worker.mlp_data())
    assert got["losses"] == pytest.approx(ref.callbacks[0].values, rel=1e-5)
    for k, v in ref.model.state_dict().items():
        torch.testing.assert_close(got["state"][k], v, rtol=1e-5, atol=1e-6)
