"""One rank of the DDP tests: ``python _ddp_worker.py SCENARIO OUT_DIR``.

The test starts it in several processes with the variables ``torchrun`` sets
(or under ``torchrun`` itself). The Trainer finds them and runs DDP. The
builders are shared with the test, which makes the single-process reference
runs from the same data and initial weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from gradwise.nn import multiclass, regression
from gradwise.train import (
    Callback,
    Checkpoint,
    EarlyStopping,
    MetricsLogger,
    Trainer,
    is_main_process,
    process_rank,
    world_size,
)

N, N_VAL, D, K = 100, 37, 6, 3  # 100 = 2 ranks × 50; the odd val set splits 19 / 18


def data(n: int, seed: int, task: str = "multiclass"):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, D, generator=g)
    if task == "multiclass":
        return X, (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    return X, torch.stack([X[:, 0] - 2 * X[:, 2], X[:, 1] * X[:, 3] + 5], dim=1)


class Plain(Dataset):
    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


def sgd_trainer(batch_size: int, task: str = "multiclass", **kw) -> Trainer:
    """No dropout, plain SGD with momentum: 1 process with batch B·W is the reference."""
    torch.manual_seed(0)
    out = K if task == "multiclass" else 2
    model = nn.Sequential(nn.Linear(D, 16), nn.Tanh(), nn.Linear(16, out))
    head = multiclass(K) if task == "multiclass" else regression(2)
    metrics = None if task == "multiclass" else ["mse", "mae", "r2"]
    return Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        head,
        epochs=3,
        batch_size=batch_size,
        seed=3,
        metrics=metrics,
        **kw,
    )


class Crash(Callback):
    order = 200  # after Checkpoint

    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_step_end(self, state):
        if state.step == self.at_step:
            raise RuntimeError("simulated crash")


def resumable_trainer(log_dir: Path, crash_at: int | None = None) -> Trainer:
    """Dropout (per-rank RNG), Adam, a scheduler and grad_accum=2: what resume must restore."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, K))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    callbacks = [
        MetricsLogger(log_dir, log_every=1, tensorboard=False),
        Checkpoint(log_dir / "ckpt", every_n_steps=2, keep=2),
        EarlyStopping("val_loss", patience=10),
    ]
    if crash_at is not None:
        callbacks.append(Crash(crash_at))
    return Trainer(
        model,
        opt,
        multiclass(K),
        epochs=3,
        batch_size=8,  # 50 examples per rank: 7 batches, 4 steps per epoch
        grad_accum=2,
        seed=5,
        scheduler=torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
        callbacks=callbacks,
    )


def save(out: Path, name: str, trainer: Trainer, history) -> None:
    torch.save(
        {
            "state": trainer.model.state_dict(),
            "history": [dict(r) for r in history],
            "events": history.events,
            "rank": process_rank(),
            "world": world_size(),
            "main": is_main_process(),
        },
        out / f"{name}_rank{process_rank()}.pt",
    )


def main(scenario: str, out: Path) -> None:
    torch.set_num_threads(1)
    X, y = data(N, 0)
    val = data(N_VAL, 1)
    if scenario == "match":
        # Batch 16 on each of 2 ranks: the reference is 1 process with batch 32.
        t = sgd_trainer(16)
        save(out, "tuple", t, t.fit((X, y), val=val))
        t = sgd_trainer(16)
        save(out, "dataset", t, t.fit(Plain(X, y), val=Plain(*val)))
        Xr, yr = data(N, 2, "regression")
        t = sgd_trainer(16, "regression")
        save(out, "regression", t, t.fit((Xr, yr), val=data(N_VAL, 3, "regression")))
    elif scenario == "crash":
        try:
            resumable_trainer(out / "run", crash_at=7).fit((X, y), val=val)
        except RuntimeError as exc:
            assert "simulated crash" in str(exc)
        else:
            raise SystemExit("the crash did not happen")
        # The same run, uninterrupted. Each rank names its own directory, so
        # whatever rank 1 wrote would show.
        t = resumable_trainer(out / f"full{process_rank()}")
        save(out, "full", t, t.fit((X, y), val=val))
    elif scenario == "resume":
        t = resumable_trainer(out / "run")
        save(out, "resumed", t, t.fit((X, y), val=val, resume=out / "run" / "ckpt"))
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
