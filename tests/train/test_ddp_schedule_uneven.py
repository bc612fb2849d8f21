"""Under DDP (2 processes, gloo on CPU) with grad_accum and uneven per-rank loaders, the
schedule ends exactly at the last optimizer step: no step past its end, none short of it.
"""

from __future__ import annotations

import importlib.util
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gradwise.config import schedule_config

WORKER = Path(__file__).with_name("_uneven_schedule_worker.py")
_spec = importlib.util.spec_from_file_location("_uneven_schedule_worker", WORKER)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _steps_per_epoch(case: str, world: int = 2) -> int:
    """Counted by hand: per-rank examples, then batches, then accumulation groups."""
    n, batch, accum, kind = worker.CASES[case]
    per_rank = math.ceil(n / world)  # padded by wrapping around, as DistributedSampler
    batches = per_rank // batch if kind == "loader" else math.ceil(per_rank / batch)
    return math.ceil(batches / accum)


def test_the_cases_are_uneven():
    # every case ends an epoch inside a short accumulation group, with a padded shard
    for case, (n, batch, accum, kind) in worker.CASES.items():
        per_rank = math.ceil(n / 2)
        batches = per_rank // batch if kind == "loader" else math.ceil(per_rank / batch)
        assert n % 2 == 1 and batches % accum != 0, case
    assert {c: _steps_per_epoch(c) for c in worker.CASES} == {
        "tuple": 3, "dataset": 3, "loader_drop_last": 2,
    }  # fmt: skip


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("uneven")
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
               GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")  # fmt: skip
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), str(out)],
                         env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        for r in range(2)
    ]
    try:
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, text in zip(procs, outs):
        assert p.returncode == 0, text[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(worker.CASES))
def test_ddp_schedule_ends_exactly_at_the_last_step_with_uneven_loaders(ranks, case):
    total = worker.EPOCHS * _steps_per_epoch(case)
    ref = schedule_config(**worker.SCHEDULE).build(total)
    expected = [worker.LR * ref(i) for i in range(total)]
    final = worker.LR * ref.min_factor  # the schedule's end value
    assert ref(total) == pytest.approx(ref.min_factor, rel=1e-12)
    for r in ranks:
        got = r[case]
        assert got["total"] == total and got["steps"] == total
        assert len(got["seen"]) == total  # no step past the end, none short of it
        assert got["seen"] == pytest.approx(expected, rel=1e-12, abs=0)
        assert got["seen"][-1] > final  # the last step still ran inside the schedule
        assert got["after"] == pytest.approx(final, rel=1e-12)  # and it ended there
    # a schedule over one step more or less would have given other rates
    for other in (total - 1, total + 1):
        wrong = schedule_config(**worker.SCHEDULE).build(other)
        assert [worker.LR * wrong(i) for i in range(total)] != pytest.approx(expected, rel=1e-9)
