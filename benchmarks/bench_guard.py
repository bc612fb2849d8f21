"""DivergenceGuard's cost per optimizer step on the digits MLP (ours with / without the guard).

The digits MLP (64-128-64-10) with SGD + momentum at lr_find's rate, batch 128,
with validation data (so the trend rule watches val_loss): the same Trainer run
without a guard, with one whose trend rule is off (``monitor=None``) and with
a default one, alternated, best of ``--repeats``. Times are per optimizer step,
the per-epoch validation pass included, as wall time and as this process's CPU
time (``time.process_time``: on a machine shared with other jobs it is the
steadier of the two; with one thread it is the step's own work). Prints the
ratios; the goal is guard / plain <= 1.05 (the guard costs <= 5% of a step).

On a busy machine the runs being compared see different loads, and the
ratios are noise. ``--share`` measures instead, inside each guarded run, the
time spent in the guard's own callbacks (every event it handles: the per-step
checks, the copies, the trend rule, the final restore) against the run's
time: numerator and denominator see the same load. (Under a load of 10-22 on
2 cores it still moved between 0.02 and 0.07 from one round to the next.) ``1 + share / (1 - share)`` is the guard / plain
ratio it implies. (It uses ``perf_counter``: in a sandbox ``process_time``
can be a system call of ~10 us, more than the guard's own work per call.)

    python benchmarks/bench_guard.py --repeats 7 [--threads 1] [--share]
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


class TimedGuard(DivergenceGuard):
    """A DivergenceGuard that adds up the time spent in its callbacks."""

    spent = 0.0


def _timed(name: str):
    inner = getattr(DivergenceGuard, name)

    def hook(self, *args):
        t0 = time.perf_counter()
        try:
            return inner(self, *args)
        finally:
            self.spent += time.perf_counter() - t0

    return hook


for _event in ("on_fit_start", "on_before_step", "on_step_end", "on_epoch_end", "on_fit_end"):
    setattr(TimedGuard, _event, _timed(_event))


def guard_share(splits) -> float:
    """Time in the guard's callbacks / time of the whole guarded run."""
    model = _model(0)
    guard = TimedGuard()
    trainer = Trainer(
        model,
        sgd(model.parameters(), lr=LR, momentum=0.9),
        multiclass(10),
        epochs=EPOCHS,
        batch_size=BATCH,
        seed=0,
        callbacks=[guard],
    )
    t0 = time.perf_counter()
    trainer.fit(splits[0], splits[1])
    return guard.spent / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--share", action="store_true", help="only the in-run share")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = _digits(0)
    guard_share(splits)  # warm-up
    shares = sorted(guard_share(splits) for _ in range(args.repeats))
    med = shares[len(shares) // 2]
    print(
        f"guard's share of a guarded run's time: median {med:.3f} of {args.repeats} runs "
        f"(min {shares[0]:.3f}, max {shares[-1]:.3f}); implied guard / plain = "
        f"{1 + med / (1 - med):.3f}"
    )
    if args.share:
        return
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
