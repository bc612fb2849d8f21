"""gradwise.schedules against torch's LR schedulers: the cost of one ``scheduler.step()``.

A scheduler step is pure Python bookkeeping, so the question is only whether
ours adds overhead. Measured in one run, interleaved so that machine load hits
every variant alike, on an SGD optimizer with 4 param groups:

- attach(cosine) / CosineAnnealingLR                 (target <= 1.5)
- attach(one_cycle) / OneCycleLR(cycle_momentum=False) (target <= 1.5)
- attach(warmup_cosine) / LambdaLR(same lambda)      (target <= 1.5)
- attach(warmup_cosine) / SequentialLR(LinearLR, CosineAnnealingLR)
- attach(polynomial) / PolynomialLR, attach(linear) / LinearLR(end_factor < 1),
  attach(cyclic) / CyclicLR (per-group base and peak), attach(wsd) / HF's
  get_wsd_schedule (a LambdaLR)

Also printed: a scheduler step in microseconds next to an optimizer step of a
small MLP, to show that neither matters in a training loop.

Run: ``python benchmarks/bench_schedules.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import torch
from torch.optim import lr_scheduler as L

from gradwise.schedules import (
    attach,
    cosine,
    cyclic,
    linear,
    one_cycle,
    polynomial,
    warmup_cosine,
    wsd,
)

GROUPS = 4


def optimizer() -> torch.optim.Optimizer:
    groups = [
        {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.1 / (i + 1)} for i in range(GROUPS)
    ]
    return torch.optim.SGD(groups, momentum=0.9)


def hf_style_lambda(total: int, warmup: int):
    def fn(step: int) -> float:
        if step < warmup:
            return step / warmup
        return 0.5 * (
            1.0 + math.cos(math.pi * min(step - warmup, total - warmup) / (total - warmup))
        )

    return fn


def variants(steps: int) -> dict[str, tuple]:
    warm = steps // 20
    return {
        "cosine": (
            lambda o: attach(o, cosine(steps)),
            lambda o: L.CosineAnnealingLR(o, T_max=steps),
        ),
        "one_cycle": (
            lambda o: attach(o, one_cycle(steps + 1)),
            lambda o: L.OneCycleLR(o, max_lr=0.1, total_steps=steps + 1, cycle_momentum=False),
        ),
        "warmup_cosine vs LambdaLR": (
            lambda o: attach(o, warmup_cosine(steps, warm)),
            lambda o: L.LambdaLR(o, hf_style_lambda(steps, warm)),
        ),
        "warmup_cosine vs SequentialLR": (
            lambda o: attach(o, warmup_cosine(steps, warm)),
            lambda o: L.SequentialLR(
                o, [L.LinearLR(o, 1e-3, 1.0, warm), L.CosineAnnealingLR(o, steps - warm)], [warm]
            ),
        ),
        "polynomial": (
            lambda o: attach(o, polynomial(steps, power=2.0)),
            lambda o: L.PolynomialLR(o, total_iters=steps, power=2.0),
        ),
        "linear to end_factor 0.1": (
            lambda o: attach(o, linear(steps, end_factor=0.1)),
            lambda o: L.LinearLR(o, 1.0, 0.1, steps),
        ),
        "cyclic triangular2": (
            lambda o: attach(_with_base(o), cyclic(steps // 10, mode="triangular2")),
            lambda o: L.CyclicLR(o, base_lr=[g["lr"] / 10 for g in o.param_groups],
                                 max_lr=[g["lr"] for g in o.param_groups], step_size_up=steps // 10,
                                 mode="triangular2", cycle_momentum=False),
        ),
        "wsd vs HF get_wsd_schedule": (
            lambda o: attach(o, wsd(decay=steps // 5, total_steps=steps, warmup=warm, decay_type="1-sqrt")),
            _hf_wsd(steps, warm),
        ),
    }


def _with_base(o):
    for g in o.param_groups:
        g["base_lr"] = g["lr"] / 10
    return o


def _hf_wsd(steps: int, warm: int):
    def make(o):
        from transformers import get_wsd_schedule

        return get_wsd_schedule(o, num_warmup_steps=warm, num_decay_steps=steps // 5,
                                num_training_steps=steps, decay_type="1-sqrt")
    return make


def time_steps(make, steps: int) -> float:
    """Seconds per scheduler.step() over ``steps`` steps (optimizer step not timed)."""
    opt = optimizer()
    sched = make(opt)
    opt.step()  # torch warns if the scheduler steps before the optimizer ever did
    start = time.perf_counter()
    for _ in range(steps):
        sched.step()
    return (time.perf_counter() - start) / steps


def optimizer_step_time(repeats: int) -> float:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(64, 64), torch.randint(0, 10, (64,))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")  # torch's notes about SequentialLR / step order
    steps, repeats = (1000, 5) if args.quick else (10000, 9)

    print(f"torch {torch.__version__}; {GROUPS} param groups; {steps} steps x {repeats} repeats")
    print(f"{'schedule':32s} {'ours us':>9s} {'torch us':>9s} {'ratio':>7s}")
    for name, (ours, theirs) in variants(steps).items():
        a, b = [], []
        for _ in range(repeats):  # interleaved
            a.append(time_steps(ours, steps))
            b.append(time_steps(theirs, steps))
        mine, peer = min(a), min(b)
        print(f"{name:32s} {mine * 1e6:9.2f} {peer * 1e6:9.2f} {mine / peer:7.2f}")
    opt_us = optimizer_step_time(200 if args.quick else 1000) * 1e6
    print(f"for scale: one SGD step of a 64-64-10 MLP on a batch of 64 = {opt_us:.1f} us")


if __name__ == "__main__":
    main()
