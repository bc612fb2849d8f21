"""Sweep throughput on a PostgreSQL server: trials/hour with 2 workers / 1 worker.

Only the sweep part of the distributed benchmark. A throwaway PostgreSQL
server (``initdb`` + ``pg_ctl`` on 127.0.0.1, as in the tests; Debian's
``postgresql`` package and ``psycopg[binary]`` needed) holds the study. A
random sweep of small trials (iris, an MLP, a few epochs, 1 torch thread per
worker) runs once with 1 worker process and once with 2 worker processes,
each started separately with ``gradwise sweep --storage URL`` as on separate
machines. Throughput is counted from the database: finished trials divided by
the time from the first trial's start to the last trial's end (so the
seconds each process spends importing torch do not count), per hour.
Repeats alternate 1 and 2 workers; the ratio is that of medians.

    python benchmarks/bench_distributed.py            # 24 trials, 3 repeats
    python benchmarks/bench_distributed.py --quick    # 8 trials, 1 repeat
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("_pg", HERE.parent / "tests/sweep/_postgres.py")
pg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pg)


def sweep_raw(name: str, runs_dir: Path, n: int, epochs: int) -> dict:
    return {
        "name": name,
        "runs_dir": str(runs_dir),
        "data": {"name": "iris", "seed": 0},
        "model": {"hidden": [32, 32]},
        "training": {"epochs": epochs, "batch_size": 16, "seed": 0, "device": "cpu"},
        "sweep": {
            "method": "random",
            "n_trials": n,
            "seed": 0,
            "pruner": "none",
            "params": {"optimizer.lr": {"low": 1e-3, "high": 0.3, "log": True}},
        },
    }


def trials_per_hour(url: str, name: str) -> float:
    import optuna

    from gradwise.sweep._storage import open_storage

    study = optuna.load_study(study_name=name, storage=open_storage(url))
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    start = min(t.datetime_start for t in done)
    end = max(t.datetime_complete for t in done)
    return len(done) / (end - start).total_seconds() * 3600


def run_once(url: str, tmp: Path, tag: str, workers: int, n: int, epochs: int) -> float:
    name = f"bench_{tag}"
    db = pg.new_database(url, name)
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(sweep_raw(name, tmp / "runs", n, epochs)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gradwise", "sweep", str(cfg), "--storage", db]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    for p in procs:
        _, err = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise SystemExit(err)
    return trials_per_hour(db, name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    n = args.trials or (8 if args.quick else 24)
    repeats = args.repeats or (1 if args.quick else 3)
    why = pg.missing()
    if why is not None:
        raise SystemExit(f"bench_distributed: {why}")
    print(f"cpu cores: {os.cpu_count()}, trials per sweep: {n}, epochs per trial: {args.epochs}")
    rates: dict[int, list[float]] = {1: [], 2: []}
    with pg.postgres_server() as url, tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                rate = run_once(url, Path(tmp), f"r{r}_w{workers}", workers, n, args.epochs)
                rates[workers].append(rate)
                print(f"repeat {r}: {workers} worker(s): {rate:,.0f} trials/hour")
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"\n| workers | trials/hour (median of {repeats}) |\n|---|---|")
    print(f"| 1 | {one:,.0f} |\n| 2 | {two:,.0f} |")
    print(f"\n2 workers / 1 worker: {two / one:.2f} (goal >= 1.8)")


if __name__ == "__main__":
    main()
