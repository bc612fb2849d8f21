"""Check the tour's teaching claims over seeds and thread counts; print one table.

Each claim is a function of a seed returning its margin (>= 0 when the claim
holds). It runs on every seed with every thread count (``torch.set_num_threads``:
other thread counts pick other kernels, so other round-off, the cheapest
stand-in for another machine), and the table gives the worst margin, pass
(every run >= 0) or fail, and the time spent.

    python benchmarks/claims.py                  # 5 seeds x {1, 2} threads
    python benchmarks/claims.py --seeds 3 --threads 1

Claims covered (see docs/claims.md for what is not yet covered):
  lr.guarded     10x lr_find's rate with a DivergenceGuard ends within 3 points
                 of the suggested rate's test accuracy (digits MLP, 20 epochs);
  lr.unguarded   the same run without the guard ends at chance (<= 0.2, 10 classes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from gradwise.demo._lr import guard_claim

# claim name -> (text, function of a seed returning {margin name: margin})
Runner = Callable[[int], dict[str, float]]


def _lr(seed: int) -> dict[str, float]:
    r = guard_claim(seed)
    return {"lr.guarded": r["guarded_margin"], "lr.unguarded": r["unguarded_margin"]}


CLAIMS: dict[str, str] = {
    "lr.guarded": "guard on at 10x lr: test acc >= suggested-lr run - 3 points",
    "lr.unguarded": "guard off at 10x lr: test acc <= 0.2 (chance 0.1)",
}
RUNNERS: list[Runner] = [_lr]


def check(seeds: int, threads: list[int]) -> list[dict[str, object]]:
    """Run every claim on ``range(seeds)`` x ``threads``; one row per claim."""
    margins: dict[str, list[float]] = {name: [] for name in CLAIMS}
    seconds: dict[str, float] = {name: 0.0 for name in CLAIMS}
    before = torch.get_num_threads()
    try:
        for runner in RUNNERS:
            for n in threads:
                torch.set_num_threads(n)
                for seed in range(seeds):
                    t0 = time.perf_counter()
                    out = runner(seed)
                    dt = (time.perf_counter() - t0) / len(out)
                    for name, margin in out.items():
                        margins[name].append(margin)
                        seconds[name] += dt
    finally:
        torch.set_num_threads(before)
    return [
        {
            "claim": name,
            "text": CLAIMS[name],
            "runs": len(margins[name]),
            "worst margin": min(margins[name]),
            "pass": all(m >= 0 for m in margins[name]),
            "seconds": seconds[name],
        }
        for name in CLAIMS
    ]


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| claim | what | runs | worst margin | pass | time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['claim']} | {r['text']} | {r['runs']} | {r['worst margin']:+.3f} | "
            f"{'pass' if r['pass'] else 'FAIL'} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows = check(args.seeds, args.threads)
    print(table(rows))
    total = time.perf_counter() - t0
    print(
        f"\n{args.seeds} seeds x threads {args.threads}; total {total:.1f} s; torch {torch.__version__}"
    )
    raise SystemExit(0 if all(r["pass"] for r in rows) else 1)


if __name__ == "__main__":
    main()
