"""DivergenceGuard's cost per optimizer step on the digits MLP (ours with / without the guard).

The digits MLP (64-128-64-10) with SGD + momentum at lr_find's rate, batch 128,
with validation data (so the trend rule watches val_loss): the same Trainer run
without a guard, with one whose trend rule is off (``monitor=None``) and with
a default one. The goal is guard / plain <= 1.05 (the guard costs <= 5% of a
step, the per-epoch validation pass included).

On a machine shared with other jobs, runs measured one after the other see
different loads, and a best-of or mean ratio is noise as large as the 5% it
looks for. So the runs are *paired*: each round runs the three variants back to
back (in an order that rotates from round to round, so that no variant always
comes first), each timed twice: by this process's CPU time
(``time.process_time``: with one thread it is the step's own work, and other
jobs' time is not in it; the less noisy of the two on a busy machine) and by
the wall clock. The ratios guard / plain and guard without its trend rule /
plain are taken within each round, and the median of the rounds' ratios is
reported, with its quartiles. A load that changes from one round to the next
cancels in the ratio; one that changes within a round moves that round's
ratio only, and the median ignores it.

``--share`` measures instead, inside each guarded run, the time spent in the
guard's own callbacks (every event it handles: the per-step checks, the
copies, the trend rule, the final restore) against the run's time; ``1 +
share / (1 - share)`` is the guard / plain ratio it implies.

    python benchmarks/bench_guard.py --rounds 21 [--threads 1] [--share]
"""

from __future__ import annotations

import argparse
import statistics
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


STEP_EVENTS = ("on_before_step", "on_step_end")


class TimedGuard(DivergenceGuard):
    """A DivergenceGuard that adds up the time spent in its callbacks, per step and not."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.spent = {"step": 0.0, "rest": 0.0}


def _timed(name: str):
    inner = getattr(DivergenceGuard, name)

    def hook(self, *args):
        t0 = time.perf_counter()
        try:
            return inner(self, *args)
        finally:
            self.spent["step" if name in STEP_EVENTS else "rest"] += time.perf_counter() - t0

    return hook


for _event in ("on_fit_start", "on_before_step", "on_step_end", "on_epoch_end", "on_fit_end"):
    setattr(TimedGuard, _event, _timed(_event))


def guard_share(splits, guard: dict) -> dict[str, float]:
    """Time in the guard's per-step callbacks, and in the others (fit start and end,
    epoch ends: the copies and the trend rule), over the time of the whole guarded run."""
    model = _model(0)
    timed = TimedGuard(**guard)
    trainer = Trainer(
        model,
        sgd(model.parameters(), lr=LR, momentum=0.9),
        multiclass(10),
        epochs=EPOCHS,
        batch_size=BATCH,
        seed=0,
        callbacks=[timed],
    )
    t0 = time.perf_counter()
    trainer.fit(splits[0], splits[1])
    total = time.perf_counter() - t0
    return {k: v / total for k, v in timed.spent.items()}


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    v = sorted(values)
    n = len(v)
    return v[n // 4], statistics.median(v), v[(3 * n) // 4]


VARIANTS = {"plain": None, "guard, no trend rule": {"monitor": None}, "guard": {}}


def paired_ratios(splits, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per clock ("cpu", "wall"): per round, seconds per step of each variant over the
    plain run's in the same round; and the plain run's us/step ("plain us/step")."""
    names = list(VARIANTS)
    for kw in VARIANTS.values():
        seconds_per_step(splits, kw)  # warm-up
    out: dict[str, dict[str, list[float]]] = {}
    for clock in ("cpu", "wall"):
        out[clock] = {n: [] for n in [*names[1:], "plain us/step"]}
    for r in range(rounds):
        order = names[r % 3 :] + names[: r % 3]  # rotate: no variant always runs first
        times = {n: seconds_per_step(splits, VARIANTS[n]) for n in order}
        for i, clock in enumerate(("wall", "cpu")):
            plain = times["plain"][i]
            out[clock]["plain us/step"].append(plain * 1e6)
            for n in names[1:]:
                out[clock][n].append(times[n][i] / plain)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="paired rounds (odd: a median)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--share", action="store_true", help="only the in-run share")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = _digits(0)
    if args.share:
        for name, kw in list(VARIANTS.items())[1:]:
            guard_share(splits, kw)  # warm-up
            runs = [guard_share(splits, kw) for _ in range(args.rounds)]
            parts = {
                "per-step callbacks": [r["step"] for r in runs],
                "fit and epoch callbacks": [r["rest"] for r in runs],
                "all": [r["step"] + r["rest"] for r in runs],
            }
            print(f"{name}: share of a guarded run's time (wall clock), {args.rounds} runs")
            for part, values in parts.items():
                lo, med, hi = _quartiles(values)
                print(f"  {part:24s} median {med:.4f} (quartiles {lo:.4f}, {hi:.4f})")
            med = statistics.median(parts["all"])
            print(f"  implied {name} / plain = {1 + med / (1 - med):.3f}")
        return
    t0 = time.perf_counter()
    ratios = paired_ratios(splits, args.rounds)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {EPOCHS} epochs per "
        f"run, {args.rounds} paired rounds, {time.perf_counter() - t0:.0f} s"
    )
    for clock, title in (("cpu", "CPU time"), ("wall", "wall clock")):
        lo, med, hi = _quartiles(ratios[clock].pop("plain us/step"))
        print(
            f"{title}: plain median {med:.1f} us/step (quartiles {lo:.1f}, {hi:.1f}), "
            "validation included"
        )
        for name, values in ratios[clock].items():
            lo, med, hi = _quartiles(values)
            print(
                f"  {name:22s} / plain: median paired ratio {med:.3f} "
                f"(quartiles {lo:.3f}, {hi:.3f})"
            )
    for clock in ("cpu", "wall"):
        med = statistics.median(ratios[clock]["guard"])
        verdict = "met" if med <= 1.05 else "NOT met"
        print(f"goal guard / plain <= 1.05 ({clock}): {verdict} ({med:.3f})")


if __name__ == "__main__":
    main()
