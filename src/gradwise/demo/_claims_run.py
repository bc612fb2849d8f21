"""Run the tour's claims over seeds x thread counts: one subprocess per thread count.

torch's thread count is a property of the process (and ``OMP_NUM_THREADS`` is
read when torch starts), so each thread count runs in a fresh Python process
with ``OMP_NUM_THREADS=N`` and ``torch.set_num_threads(N)``. The worker writes
one JSON line per (section, seed) as it goes; the parent reads them, prints a
progress line for each, and builds the table (:func:`check_claims`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gradwise.demo._claims import (
    Run,
    SectionClaims,
    measure,
    sections_with_claims,
    summarize,
)
from gradwise.errors import ConfigError, GradwiseError


class ClaimCheckError(GradwiseError, RuntimeError):
    """A claim worker process failed (an error, not a claim that does not hold)."""


def _check_args(seeds: int, threads: Sequence[int]) -> None:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"claims: seeds must be an int >= 1, got {seeds!r}")
    if not threads or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in threads):
        raise ConfigError(f"claims: threads must be ints >= 1, got {list(threads)!r}")


def run_in_process(
    chosen: Sequence[SectionClaims],
    seeds: Sequence[int],
    threads: int,
    work_dir: Path,
    on_run: Callable[[Run], None] | None = None,
) -> list[Run]:
    """Measure every section of ``chosen`` on every seed here, with ``threads`` torch threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    runs = []
    try:
        for sec in chosen:
            for seed in seeds:
                run = measure(sec, seed, work_dir / f"{sec.section}-seed{seed}-t{threads}", threads)
                runs.append(run)
                if on_run is not None:
                    on_run(run)
    finally:
        torch.set_num_threads(before)
    return runs


def _progress(run: Run) -> str:
    head = f"   {run.section:<12} seed {run.seed}  {run.threads} thread(s)  {run.seconds:6.1f} s  "
    if run.error:
        return head + f"error: {run.error}"
    return head + f"worst margin {min(run.margins.values()):+.3f}"


def check_claims(
    sections: Sequence[str] | None = None,
    seeds: int = 5,
    threads: Sequence[int] = (1, 2),
    *,
    echo: Callable[[str], None] | None = print,
    record: Path | None = None,
) -> list[dict[str, Any]]:
    """Check the claims of ``sections`` (all when None) on ``range(seeds)`` x ``threads``.

    Args:
        sections: demo section names; None for every section with claims.
        seeds: seeds 0 .. seeds-1 (>= 1).
        threads: torch thread counts; each runs in its own subprocess.
        echo: called with a progress line per (section, seed, thread count).
        record: a JSON-lines file to append every run to (section, seed,
            threads, seconds, measured values, margins).

    Returns:
        One row per claim (:func:`gradwise.demo._claims.summarize`): ``claim``,
        ``text``, ``runs``, ``worst`` margin, ``status`` (``"pass"``,
        ``"FAIL"`` or ``"skipped (needs gradwise[<extra>])"``) and ``seconds``.

    Raises:
        ClaimCheckError: a worker process failed; the message holds its log's end.
    """
    _check_args(seeds, threads)
    chosen = sections_with_claims(sections)
    skipped = {s.section: why for s in chosen if (why := s.missing()) is not None}
    todo = [s.section for s in chosen if s.section not in skipped]
    runs: list[Run] = []
    if todo:
        with tempfile.TemporaryDirectory(prefix="gradwise-claims-") as tmp:
            for n in threads:
                runs += _spawn(todo, seeds, n, Path(tmp), echo, record)
    return summarize(chosen, runs, skipped)


def _spawn(
    sections: list[str],
    seeds: int,
    threads: int,
    tmp: Path,
    echo: Callable[[str], None] | None,
    record: Path | None,
) -> list[Run]:
    results, log = tmp / f"runs-t{threads}.jsonl", tmp / f"log-t{threads}.txt"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "gradwise.demo._claims_run", "--worker", "--threads",
           str(threads), "--seeds", str(seeds), "--out", str(results), *sections]  # fmt: skip
    runs: list[Run] = []
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        while True:
            done = proc.poll() is not None
            # complete lines only: the worker may be writing the last one
            lines = results.read_text().split("\n")[:-1] if results.exists() else []
            for line in lines[len(runs) :]:
                run = Run(**json.loads(line))
                runs.append(run)
                if record is not None:
                    with open(record, "a") as f:
                        f.write(line + "\n")
                if echo is not None:
                    echo(_progress(run))
            if done:
                break
            time.sleep(0.5)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise ClaimCheckError(
            f"claims worker ({threads} thread(s), sections {sections}) exited with status "
            f"{proc.returncode}; the end of its output:\n{tail}"
        )
    return runs


def _worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seeds", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("sections", nargs="+")
    args = parser.parse_args(argv)

    def write(run: Run) -> None:
        with open(args.out, "a") as f:
            f.write(json.dumps(dataclasses.asdict(run)) + "\n")

    with tempfile.TemporaryDirectory(prefix="gradwise-claims-work-") as tmp:
        chosen = sections_with_claims(args.sections)
        run_in_process(chosen, range(args.seeds), args.threads, Path(tmp), write)


if __name__ == "__main__":
    _worker(sys.argv[1:])
