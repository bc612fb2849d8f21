"""One rank of the DDP schedule test: ``python _schedule_worker.py OUT_DIR``.

Each rank trains on its shard with ``grad_accum`` and a schedule the Trainer
attaches itself, and saves the lr every optimizer step saw.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from gradwise.nn import multiclass
from gradwise.schedules import warmup_cosine
from gradwise.train import Trainer, process_rank

N, D, K = 100, 6, 3  # 50 examples per rank: batch 8 -> 7 batches; grad_accum 2 -> 4 steps


def lr_recorder(optimizer: torch.optim.Optimizer) -> list[float]:
    """The lr of group 0 at each ``optimizer.step()``, read inside the step (public hook)."""
    seen: list[float] = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    return seen


def trainer(epochs: int = 3) -> tuple[Trainer, list[float]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, K))
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    seen = lr_recorder(opt)
    t = Trainer(
        model, opt, multiclass(K), epochs=epochs, batch_size=8, grad_accum=2, seed=0,
        schedule=lambda total: warmup_cosine(total_steps=total, warmup=2),
    )  # fmt: skip
    return t, seen


def main(out: Path) -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, D, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    t, seen = trainer()
    t.fit((X, y))
    final = t.optimizer.param_groups[0]["lr"]
    torch.save({"seen": seen, "final": final, "total": t.scheduler.schedule.total_steps},
               out / f"rank{process_rank()}.pt")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]))
