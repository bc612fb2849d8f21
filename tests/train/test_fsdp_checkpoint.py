"""Sharded (DCP) checkpoints of FSDP runs: atomic writes, exact resume, other world sizes, export.

Fast tests use a one-rank process group in this process. The slow one starts
2 processes, SIGKILLs rank 1 mid-run, resumes with 2 new processes (the end
must equal an uninterrupted 2-process run bit for bit), resumes the
2-process checkpoint in 1 plain process (equal within fp32 round-off), and
exports the 2-process checkpoint to one safetensors file.
"""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gradwise.cli import app
from gradwise.train import load_checkpoint
from gradwise.train._checkpoint import resolve_checkpoint
from gradwise.train._dcp import META, is_sharded_checkpoint
from gradwise.train._export import export_checkpoint

_here = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("_fsdp_worker", _here / "_fsdp_worker.py")
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)
_spec = importlib.util.spec_from_file_location("_test_fsdp", _here / "test_fsdp.py")
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)
one_rank_group = common.one_rank_group


def _full(trainer):
    return worker.full_state(trainer.model)


def test_one_rank_resume_is_exact_and_writes_are_atomic(one_rank_group, tmp_path):
    # 64 examples in batches of 4, grad_accum 2: 8 steps per epoch; crash at step 11.
    full = worker.resumable_trainer(tmp_path / "full", "fsdp")
    full.fit(worker.mlp_data())
    with pytest.raises(RuntimeError, match="simulated crash"):
        worker.resumable_trainer(tmp_path / "run", "fsdp", crash_at=11).fit(worker.mlp_data())
    ckpt = tmp_path / "run" / "ckpt"
    names = sorted(p.name for p in ckpt.iterdir())
    # Rolling sharded checkpoints are directories; no temporary directory is left behind.
    assert names == ["epoch-0001", "latest", "step-00000003", "step-00000006", "step-00000009"]
    assert all(is_sharded_checkpoint(ckpt / n) for n in names if n != "latest")
    assert (ckpt / "step-00000009" / ".metadata").is_file()
    meta = load_checkpoint(ckpt / "step-00000009")
    assert meta["sharded"] and meta["model"] is None and meta["position"]["step"] == 9
    # A write killed half-way leaves only a hidden temporary directory: never resumed from.
    (ckpt / ".step-00000012.tmp").mkdir()
    (ckpt / "latest").unlink()
    assert resolve_checkpoint(ckpt).name == "step-00000009"

    resumed = worker.resumable_trainer(tmp_path / "run", "fsdp")
    resumed.fit(worker.mlp_data(), resume=ckpt)
    assert resumed.callbacks[0].values == full.callbacks[0].values[9:]
    want = _full(full)
    for k, v in _full(resumed).items():
        assert torch.equal(v, want[k]), k


def test_export_writes_the_weights_and_the_peft_adapter(one_rank_group, tmp_path):
    t = worker.resumable_trainer(tmp_path / "run", "fsdp", lora=True)
    t.fit(worker.mlp_data())
    want = _full(t)
    from typer.testing import CliRunner

    res = CliRunner().invoke(app, ["export", str(tmp_path / "run" / "ckpt")])
    assert res.exit_code == 0, res.output
    out = tmp_path / "run" / "ckpt" / "export"
    got = load_file(out / "model.safetensors")
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)
    # The adapter is what gradwise.lora.save_adapter writes for the same weights.
    from gradwise.lora import save_adapter

    plain = worker.resumable_trainer(None, False, lora=True).model
    plain.load_state_dict(want)
    ref = save_adapter(plain, tmp_path / "ref")
    ours, theirs = (
        load_file(out / "adapter" / "adapter_model.safetensors"),
        load_file(ref / "adapter_model.safetensors"),
    )
    assert set(ours) == set(theirs) and len(ours) == 4
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert json.loads((out / "adapter" / "adapter_config.json").read_text()) == json.loads(
        (ref / "adapter_config.json").read_text()
    )


def test_export_writes_a_single_file_checkpoints_weights(tmp_path):
    from safetensors.torch import load_file

    from gradwise.train import Checkpoint

    t = worker.mlp_trainer(16, False)
    t.callbacks.append(Checkpoint(tmp_path / "ckpt"))
    t.fit(worker.mlp_data())
    written = export_checkpoint(tmp_path / "ckpt", tmp_path / "out")
    assert written == [tmp_path / "out" / "model.safetensors"]
    saved = load_file(written[0])
    model = t.model.state_dict()
    assert set(saved) == set(model) and all(torch.equal(saved[k], model[k]) for k in model)


@pytest.mark.slow
def test_sigkill_of_one_rank_then_resume_ends_as_an_uninterrupted_run(tmp_path):
    results = common.run_ranks("kill", tmp_path)
    assert results[1][0] == -9, results[1][1][-2000:]  # rank 1 died by SIGKILL at step 7
    assert results[0][0] != 0  # rank 0 failed in its next collective
    ckpt = tmp_path / "run" / "ckpt"
    assert resolve_checkpoint(ckpt).name == "step-00000006"
    assert not list(ckpt.glob(".*.tmp"))

    for rank, (rc, text) in enumerate(common.run_ranks("resume", tmp_path)):
        assert rc == 0, f"rank {rank} failed:\n{text[-3000:]}"
    full = torch.load(tmp_path / "full.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert resumed["losses"] == full["losses"][6:]
    for k, v in full["state"].items():
        assert torch.equal(resumed["state"][k], v), k

    # The 2-process checkpoint at the end of epoch 1, resumed by 1 plain process
    # with the global batch: the same end within fp32 round-off.
    one = worker.resumable_trainer(None, False, batch_size=8)
    one.fit(worker.mlp_data(), resume=ckpt / "epoch-0001")
    assert one.callbacks[0].values == pytest.approx(full["losses"][4:], rel=1e-5)
    for k, v in one.model.state_dict().items():
        torch.testing.assert_close(v, full["state"][k], rtol=1e-5, atol=1e-6)

    # Export of the uninterrupted run's last 2-process checkpoint: its final weights.
    export_checkpoint(tmp_path / "full" / "ckpt" / "epoch-0003", tmp_path / "export")
    got = load_file(tmp_path / "export" / "model.safetensors")
    assert all(torch.equal(got[k], v) for k, v in full["state"].items())
    assert (tmp_path / "full" / "ckpt" / "epoch-0003" / META).is_file()
