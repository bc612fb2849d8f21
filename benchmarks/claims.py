"""Check every teaching claim of the tour over seeds and thread counts; print one table.

The claims are defined once, in ``gradwise.demo._claims`` (``SECTIONS``): per
demo section, a function of a seed that runs the section's quick version and
returns measured values, and the claims as margins on them (>= 0 when the
claim holds). Each thread count runs in its own process (``OMP_NUM_THREADS``,
``torch.set_num_threads``: other thread counts pick other kernels, so other
round-off, the cheapest stand-in for another machine). The table gives, per
claim, the worst margin over every run, pass (every run >= 0) or FAIL, and the
time spent; a section whose optional dependency is missing is "skipped".
Exit status 1 when a claim fails. ``gradwise demo --check`` is the same check.

    python benchmarks/claims.py                       # 5 seeds x {1, 2} threads
    python benchmarks/claims.py --seeds 3 --threads 1 --sections lr linear
    python benchmarks/claims.py --record runs.jsonl   # keep every run's values
    python benchmarks/claims.py --table-from runs.jsonl   # the table of a recorded run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gradwise.demo import all_pass, check_claims, claims_table
from gradwise.demo._claims import Run, sections_with_claims, summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sections", nargs="+", default=None)
    parser.add_argument("--record", type=Path, default=None)
    parser.add_argument("--table-from", type=Path, default=None)
    args = parser.parse_args()
    if args.table_from is not None:
        lines = args.table_from.read_text().splitlines()
        runs = [Run(**json.loads(line)) for line in lines if line.strip()]
        chosen = sections_with_claims(args.sections)
        for sec in chosen:  # margins from the recorded values, by today's claims
            for run in runs:
                if run.section == sec.section:
                    run.margins = {c.name: float(c.margin(run.values)) for c in sec.claims}
        rows = summarize(chosen, runs, {s.section: m for s in chosen if (m := s.missing())})
        print(claims_table(rows))
        print(f"\nrecorded: {sum(r.seconds for r in runs):.0f} s of measuring")
        raise SystemExit(0 if all_pass(rows) else 1)
    t0 = time.perf_counter()
    rows = check_claims(args.sections, args.seeds, args.threads, record=args.record)
    print(claims_table(rows))
    total = time.perf_counter() - t0
    print(
        f"\n{args.seeds} seeds x threads {args.threads}; total {total:.0f} s; "
        f"torch {torch.__version__}"
    )
    raise SystemExit(0 if all_pass(rows) else 1)


if __name__ == "__main__":
    main()
