"""DivergenceGuard's cost per optimizer step on the digits MLP (ours with / without the guard).

The digits MLP (64-128-64-10) with SGD + momentum at lr_find's rate, batch 128,
with validation data (so the trend rule watches val_loss): the same Trainer run
without a guard, with one whose trend rule is off (``monitor=None``) and with
a default one, alternated, best of ``--repeats``. Prints ms per step and the
ratios; the goal for the trend rule is <= 5% of a step.

    python benchmarks/bench_guard.py --repeats 5 [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from gradwise.demo._lr import _digits, _model
from gradwise.nn import multiclass
from gradwise.optim import sgd
from gradwise.train import DivergenceGuard, Trainer

EPOCHS, BATCH, LR = 20, 128, 0.07


def seconds_per_step(splits, guard: dict | None) -> float:
    model = _model(0)
    trainer = Trainer(
        model,
        sgd(model.parameters(), lr=LR, momentum=0.9),
        multiclass(10),
        epochs=EPOCHS,
        batch_size=BATCH,
        seed=0,
        callbacks=[] if guard is None else [DivergenceGuard(**guard)],
    )
    t0 = time.perf_counter()
    history = trainer.fit(splits[0], splits[1])
    return (time.perf_counter() - t0) / history[-1]["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = _digits(0)
    variants = {"plain": None, "guard, no trend rule": {"monitor": None}, "guard": {}}
    seconds_per_step(splits, {})  # warm-up
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, kw in variants.items():
            times[name].append(seconds_per_step(splits, kw))
    best = {name: min(ts) for name, ts in times.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {EPOCHS} epochs")
    for name, sec in best.items():
        print(f"{name:22s} {sec * 1e3:.3f} ms/step (incl. per-epoch validation)")
    p, n, g = best["plain"], best["guard, no trend rule"], best["guard"]
    print(
        f"guard / plain = {g / p:.3f}; trend rule alone: (guard - no trend) / plain = "
        f"{(g - n) / p:+.3f}"
    )


if __name__ == "__main__":
    main()
