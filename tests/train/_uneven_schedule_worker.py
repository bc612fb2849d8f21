"""One rank of the uneven DDP schedule test: ``python _uneven_schedule_worker.py OUT_DIR``.

Every case gives each of the 2 ranks a loader whose batches do not fill the
last ``grad_accum`` group (and, for the odd sizes, a shard padded by wrapping
around): the Trainer must count the optimizer steps of that loader and attach
the schedule over exactly them. Each case saves the lr every optimizer step
saw (read inside ``optimizer.step`` by a public pre-hook) and the lr after the
run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from gradwise.config import schedule_config
from gradwise.nn import multiclass
from gradwise.train import Trainer, process_rank

D, K, LR, EPOCHS = 5, 3, 0.3, 2
# name -> (examples, per-rank batch, grad_accum, how the data is given)
CASES = {
    "tuple": (101, 8, 3, "tuple"),  # 51 per rank (1 padded) -> 7 batches -> 3 steps an epoch
    "dataset": (37, 4, 2, "dataset"),  # 19 per rank (1 padded) -> 5 batches -> 3 steps
    "loader_drop_last": (101, 8, 4, "loader"),  # DistributedSampler 51, drop_last -> 6 -> 2
}
SCHEDULE = {"name": "warmup_cosine", "warmup": 0.25, "min_factor": 0.1}  # as a YAML section


def data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    X = torch.randn(n, D, generator=g)
    return X, (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()


def run(case: str) -> dict[str, object]:
    n, batch, accum, kind = CASES[case]
    X, y = data(n)
    train: object = (X, y)
    if kind == "dataset":
        train = TensorDataset(X, y)
    elif kind == "loader":
        ds = TensorDataset(X, y)
        sampler = DistributedSampler(ds, shuffle=True, seed=0)  # the default rank and world
        train = DataLoader(ds, batch_size=batch, sampler=sampler, drop_last=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, K))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    seen: list[float] = []
    opt.register_step_pre_hook(lambda o, args, kwargs: seen.append(o.param_groups[0]["lr"]))
    t = Trainer(model, opt, multiclass(K), epochs=EPOCHS, batch_size=batch, grad_accum=accum,
                seed=0, schedule=schedule_config(**SCHEDULE).build)  # fmt: skip
    t.fit(train)
    return {
        "seen": seen,
        "after": opt.param_groups[0]["lr"],
        "total": t.scheduler.schedule.total_steps,
        "steps": t.history[-1]["step"],
    }


def main(out: Path) -> None:
    torch.set_num_threads(1)
    results = {case: run(case) for case in CASES}
    torch.save(results, out / f"rank{process_rank()}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
