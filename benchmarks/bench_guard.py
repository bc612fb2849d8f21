"""DivergenceGuard's cost per optimizer step on the digits MLP (ours with / without the guard).

The digits MLP (64-128-64-10) with SGD + momentum at lr_find's rate, batch 128,
with validation data (so the trend rule watches val_loss): the same Trainer run
without a guard, with one whose trend rule is off (``monitor=None``) and with
a default one, alternated, best of ``--repeats``. Times are per optimizer step,
the per-epoch validation pass included, as wall time and as this process's CPU
time (``time.process_time``: on a machine shared with other jobs it is the
steadier of the two; with one thread it is the step's own work). Prints the
ratios; the goal is guard / plain <= 1.05 (the guard costs <= 5% of a step).

    python benchmarks/bench_guard.py --repeats 7 [--threads 1]
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


def seconds_per_step(splits, guard: dict | None) -> tuple[float, float]:
    """(wall, CPU) seconds per optimizer step of one 20-epoch run."""
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
    w0, c0 = time.perf_counter(), time.process_time()
    history = trainer.fit(splits[0], splits[1])
    steps = history[-1]["step"]
    return (time.perf_counter() - w0) / steps, (time.process_time() - c0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = _digits(0)
    variants = {"plain": None, "guard, no trend rule": {"monitor": None}, "guard": {}}
    for kw in variants.values():
        seconds_per_step(splits, kw)  # warm-up
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, kw in variants.items():
            w, c = seconds_per_step(splits, kw)
            wall[name].append(w)
            cpu[name].append(c)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {EPOCHS} epochs, "
          f"best of {args.repeats}")  # fmt: skip
    for label, times in (("wall", wall), ("CPU", cpu)):
        best = {name: min(ts) for name, ts in times.items()}
        for name, sec in best.items():
            print(f"{label:4s} {name:22s} {sec * 1e6:7.1f} us/step (incl. per-epoch validation)")
        p, n, g = best["plain"], best["guard, no trend rule"], best["guard"]
        print(
            f"{label:4s} guard / plain = {g / p:.3f}; guard without trend rule / plain = "
            f"{n / p:.3f}; trend rule alone: (guard - no trend) / plain = {(g - n) / p:+.3f}"
        )


if __name__ == "__main__":
    main()
