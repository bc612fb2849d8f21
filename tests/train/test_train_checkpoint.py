"""Checkpoints: atomic writes, safe loads, and resuming bit for bit."""

import json
import os
import runpy
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from gradwise.errors import CheckpointError
from gradwise.nn import multiclass
from gradwise.train import (
    Callback,
    Checkpoint,
    EarlyStopping,
    MetricsLogger,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)

N, D, K = 96, 6, 3  # batch 16: 6 batches per epoch; grad_accum 2: 3 steps per epoch


def dataset(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    return X, y


class Plain(Dataset):
    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


class Crash(Callback):
    order = 200  # after Checkpoint

    def __init__(self, at_step):
        self.at_step = at_step

    def on_step_end(self, state):
        if state.step == self.at_step:
            raise RuntimeError("simulated crash")


def make_trainer(callbacks, init_seed=0):
    torch.manual_seed(init_seed)
    model = nn.Sequential(
        nn.Linear(D, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, K)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return Trainer(
        model,
        opt,
        multiclass(K),
        epochs=3,
        batch_size=16,
        grad_accum=2,
        seed=5,
        scheduler=torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.8),
        callbacks=callbacks,
    )


def train_data(kind):
    X, y = dataset()
    if kind == "tuple":
        return (X, y)
    if kind == "dataset":
        return Plain(X, y)
    if kind == "loader-global-rng":  # shuffles from the global torch RNG
        return DataLoader(Plain(X, y), batch_size=16, shuffle=True)
    g = torch.Generator().manual_seed(11)
    return DataLoader(Plain(X, y), batch_size=16, shuffle=True, generator=g)


def strip_times(history):
    return [{k: v for k, v in r.items() if k != "epoch_time"} for r in history]


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("kind", ["tuple", "dataset", "loader-global-rng", "loader-generator"])
def test_resume_mid_epoch_is_bit_identical(tmp_path, kind):
    val = dataset(seed=1)
    full = make_trainer([EarlyStopping(patience=10)])
    full_hist = full.fit(train_data(kind), val)

    ck = tmp_path / "ck"
    crashed = make_trainer(
        [EarlyStopping(patience=10), Checkpoint(ck, every_n_steps=2, every_epoch=False), Crash(5)]
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.fit(train_data(kind), val)
    assert (ck / "latest").read_text() == "step-00000004.pt"
    assert load_checkpoint(ck / "step-00000004.pt")["position"]["batch_in_epoch"] == 2

    torch.manual_seed(1234)  # the resumed process starts from other RNG states
    resumed = make_trainer([EarlyStopping(patience=10), Checkpoint(ck, every_n_steps=2)], 99)
    hist = resumed.fit(train_data(kind), val, resume=ck)
    assert_same_weights(full.model, resumed.model)
    assert full.optimizer.state_dict()["state"][0]["exp_avg"].equal(
        resumed.optimizer.state_dict()["state"][0]["exp_avg"]
    )
    assert strip_times(hist) == strip_times(full_hist)
    assert [e["kind"] for e in hist.events][:3] == ["checkpoint", "checkpoint", "resume"]
    assert hist.events[1]["path"] == str(ck / "step-00000004.pt")


def test_resume_from_epoch_end_checkpoint_and_logger_reads_as_one_run(tmp_path):
    X, y = dataset()
    full = make_trainer([MetricsLogger(tmp_path / "full", log_every=1)])
    full.fit((X, y))
    crashed = make_trainer(
        [MetricsLogger(tmp_path / "run", log_every=1), Checkpoint(tmp_path / "ck"), Crash(5)]
    )
    with pytest.raises(RuntimeError):
        crashed.fit((X, y))
    assert (tmp_path / "ck" / "latest").read_text() == "epoch-0001.pt"
    resumed = make_trainer(
        [MetricsLogger(tmp_path / "run", log_every=1), Checkpoint(tmp_path / "ck")]
    )
    resumed.fit((X, y), resume=tmp_path / "ck")
    assert_same_weights(full.model, resumed.model)

    def records(path, kind):
        lines = [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]
        return strip_times([r for r in lines if r["type"] == kind])

    # The crashed run logged steps 4 and 5 after its last checkpoint; they were dropped.
    assert records(tmp_path / "run", "step") == records(tmp_path / "full", "step")
    assert [r["step"] for r in records(tmp_path / "run", "step")] == list(range(1, 10))
    assert records(tmp_path / "run", "epoch") == records(tmp_path / "full", "epoch")
    events = records(tmp_path / "run", "event")
    assert [e["kind"] for e in events][:2] == ["checkpoint", "resume"]


def test_checkpoint_contents_load_with_weights_only(tmp_path):
    X, y = dataset()
    t = make_trainer([Checkpoint(tmp_path, every_n_steps=1, keep=2, save_best="train_loss")])
    t.fit((X, y))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best.pt", "epoch-0003.pt", "latest", "step-00000009.pt"]
    ckpt = torch.load(tmp_path / "epoch-0003.pt", weights_only=True)
    assert ckpt["position"] == {
        "epoch": 3,
        "step": 9,
        "batch_in_epoch": 6,
        "batches": 18,
        "epoch_done": True,
        "last_lr": pytest.approx(1e-2 * 0.8**4),
    }
    for key in ("model", "optimizer", "scheduler", "rng", "rng_epoch_start", "callbacks"):
        assert key in ckpt
    assert set(ckpt["rng"]["global"]) == {"torch", "python", "numpy", "cuda"}
    for k, v in ckpt["model"].items():
        assert torch.equal(v, t.model.state_dict()[k])
    best = load_checkpoint(tmp_path / "best.pt")
    losses = [r["train_loss"] for r in best["history"]]
    assert best["callbacks"]["Checkpoint"]["best"]["value"] == min(losses) == losses[-1]


def test_crash_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    X, y = dataset()
    real_save = torch.save
    calls = {"n": 0}

    def half_then_fail(obj, f, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            return real_save(obj, f, *a, **kw)
        f.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    t = make_trainer([Checkpoint(tmp_path, every_n_steps=1, every_epoch=False)])
    with pytest.raises(OSError, match="disk full"):
        t.fit((X, y))
    monkeypatch.setattr(torch, "save", real_save)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step-00000001.pt"]
    assert load_checkpoint(tmp_path / "step-00000001.pt")["position"]["step"] == 1
    hist = make_trainer([]).fit((X, y), resume=tmp_path)
    assert hist[-1]["step"] == 9


def test_bad_checkpoints_raise_checkpoint_error_naming_the_file(tmp_path):
    X, y = dataset()
    t = make_trainer([])
    with pytest.raises(CheckpointError, match="nope.pt' does not exist"):
        t.fit((X, y), resume=tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match=r"no checkpoint \(\*.pt\) in directory"):
        t.fit((X, y), resume=tmp_path)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pt' is corrupt"):
        t.fit((X, y), resume=garbage)
    good = save_checkpoint(tmp_path / "good.pt", {"format": "x"})
    torch.save(t.model.state_dict(), good)
    with pytest.raises(CheckpointError, match="good.pt' is not a gradwise training checkpoint"):
        load_checkpoint(good)
    ck = tmp_path / "ck"
    make_trainer([Checkpoint(ck)]).fit((X, y))
    data = (ck / "epoch-0003.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt' is corrupt"):
        t.fit((X, y), resume=cut)
    other = Trainer(nn.Linear(D, K), lambda p: torch.optim.Adam(p), multiclass(K))
    with pytest.raises(CheckpointError, match="epoch-0003.pt' does not fit"):
        other.fit((X, y), resume=ck)


SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from torch import nn
    from gradwise.nn import multiclass
    from gradwise.train import Callback, Checkpoint, Trainer

    mode, ckdir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    g = torch.Generator().manual_seed(0)
    X = torch.randn(96, 6, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()

    class Kill(Callback):
        order = 200
        def on_step_end(self, state):
            if state.step == 5:  # mid-epoch 2, one step after the step-4 checkpoint
                os.kill(os.getpid(), signal.SIGKILL)

    torch.manual_seed(0 if mode != "resume" else 77)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3),
                          nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    callbacks = [Checkpoint(ckdir, every_n_steps=2, every_epoch=False)]
    if mode == "kill":
        callbacks.append(Kill())
    t = Trainer(model, opt, multiclass(3), epochs=3, batch_size=16, grad_accum=2, seed=3,
                callbacks=callbacks)
    t.fit((X, y), resume=ckdir if mode == "resume" else None)
    torch.save(model.state_dict(), out)
    """
)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_in_a_new_process(tmp_path, monkeypatch):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)

    def run(mode, ckdir):
        out = tmp_path / f"{mode}.pt"
        proc = subprocess.run(
            [sys.executable, str(script), mode, str(ckdir), str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return proc, out

    # The uninterrupted run in this process; the claim is bit-identity across processes.
    monkeypatch.setattr(
        sys, "argv", ["run.py", "full", str(tmp_path / "ck_full"), str(tmp_path / "full.pt")]
    )
    runpy.run_path(str(script), run_name="__main__")
    proc, killed_out = run("kill", tmp_path / "ck")
    assert proc.returncode == -9 and not killed_out.exists()
    assert (tmp_path / "ck" / "latest").read_text() == "step-00000004.pt"
    proc, _ = run("resume", tmp_path / "ck")
    assert proc.returncode == 0, proc.stderr
    full = torch.load(tmp_path / "full.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resume.pt", weights_only=True)
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path / "ck"))
