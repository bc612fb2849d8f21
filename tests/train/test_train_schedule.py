"""The Trainer attaches a schedule over the steps of its own loader; lr reaches the step as set."""

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gradwise.nn import multiclass
from gradwise.schedules import cosine, warmup_cosine
from gradwise.train import Trainer

WORKER = Path(__file__).with_name("_schedule_worker.py")
_spec = importlib.util.spec_from_file_location("_schedule_worker", WORKER)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


def _data(n=50):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 6, generator=g)
    return X, (X[:, 0] > 0).long()


@pytest.mark.parametrize("grad_accum, drop_last", [(1, False), (3, False), (2, True)])
def test_schedule_ends_exactly_at_the_last_step(grad_accum, drop_last):
    X, y = _data()
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=False, drop_last=drop_last)
    batches = 50 // 8 if drop_last else -(-50 // 8)
    total = 3 * -(-batches // grad_accum)
    torch.manual_seed(0)
    model = nn.Linear(6, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    seen = worker.lr_recorder(opt)
    t = Trainer(model, opt, multiclass(2), epochs=3, grad_accum=grad_accum,
                schedule=lambda n: warmup_cosine(total_steps=n, warmup=2))  # fmt: skip
    t.fit(loader)
    ref = warmup_cosine(total_steps=total, warmup=2)
    assert seen == pytest.approx([0.5 * ref(i) for i in range(total)], rel=1e-12, abs=0)
    assert t.scheduler.schedule.total_steps == total
    assert opt.param_groups[0]["lr"] == 0.0  # cosine's end, reached after the last step


def test_a_built_schedule_is_used_as_is_and_not_with_a_scheduler():
    model = nn.Linear(6, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    t = Trainer(model, opt, multiclass(2), epochs=1, batch_size=10, schedule=cosine(total_steps=100))
    t.fit(_data())
    assert t.scheduler.schedule == cosine(total_steps=100)
    with pytest.raises(ValueError, match="schedule or a scheduler"):
        Trainer(model, opt, multiclass(2), schedule=cosine(total_steps=5),
                scheduler=torch.optim.lr_scheduler.StepLR(opt, 1))  # fmt: skip


def test_yaml_lr_reaches_the_optimizer_step_unchanged(tmp_path, monkeypatch):
    from gradwise.config import parse_config
    from gradwise.recipes import _setup
    from gradwise.recipes.train import run

    seen: list[list[float]] = []
    build = _setup.build_optimizer

    def recording(*args, **kwargs):
        opt = build(*args, **kwargs)
        opt.register_step_pre_hook(lambda o, a, k: seen.append([g["lr"] for g in o.param_groups]))
        return opt

    monkeypatch.setattr("gradwise.recipes.train.build_optimizer", recording)
    cfg = parse_config({
        "name": "lr", "runs_dir": str(tmp_path), "data": {"name": "breast_cancer"},
        "model": {"hidden": [4]}, "optimizer": {"name": "sgd", "lr": 0.0123, "momentum": 0.5},
        "training": {"epochs": 1, "batch_size": 128}, "callbacks": {"progress": False},
    })  # fmt: skip
    run(cfg)
    assert len(seen) == 4  # ceil(398 / 128) steps
    assert all(lr == 0.0123 for lrs in seen for lr in lrs)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_ranks_with_grad_accum_end_the_schedule_at_the_last_step(tmp_path):
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
               GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")  # fmt: skip
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), str(tmp_path)],
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
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    total = 3 * 4  # 3 epochs of ceil(ceil(50 / 8) / 2) steps per rank
    ref = warmup_cosine(total_steps=total, warmup=2)
    for r in ranks:
        assert r["total"] == total
        assert r["seen"] == pytest.approx([0.2 * ref(i) for i in range(total)], rel=1e-12, abs=0)
        assert r["final"] == 0.0
