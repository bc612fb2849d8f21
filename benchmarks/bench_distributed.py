"""Distributed training and sweeps: FSDP / DDP memory and step time; sweep trials/hour.

Part 1 (``--part fsdp``): 2 CPU processes (gloo) train a model whose AdamW
state dominates (an MLP of 1024×1024 layers, a small batch) with
``Trainer(distributed="fsdp")`` and with DDP. Per rank it measures the peak
resident memory added by training (``ru_maxrss`` at the end minus the value
before the model is built: libraries and the process group do not count),
the bytes of parameters + gradients + optimizer state the rank holds (from
the live tensors: a DTensor counts its local shard), and the median step
time. It prints FSDP / DDP for each (memory goal <= 0.6).

Part 2 (``--part sweep``), the sweep throughput. A throwaway PostgreSQL
server (``initdb`` + ``pg_ctl`` on 127.0.0.1, as in the tests; Debian's
``postgresql`` package and ``psycopg[binary]`` needed) holds the study. A
random sweep of small trials (iris, an MLP, a few epochs, 1 torch thread per
worker) runs once with 1 worker process and once with 2 worker processes,
each started separately with ``gradwise sweep --storage URL`` as on separate
machines. Throughput is counted from the database: finished trials divided by
the time from the first trial's start to the last trial's end (so the
seconds each process spends importing torch do not count), per hour.
Repeats alternate 1 and 2 workers; the ratio is that of medians.

    python benchmarks/bench_distributed.py            # both parts; 24 trials, 3 repeats
    python benchmarks/bench_distributed.py --quick    # 8 trials, 1 repeat, fewer steps
    python benchmarks/bench_distributed.py --part fsdp
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

HERE = Path(__file__).resolve().parent


def _pg():
    spec = importlib.util.spec_from_file_location("_pg", HERE.parent / "tests/sweep/_postgres.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- part 1: FSDP / DDP ------------------------------------------------------------------

LAYERS = 12
# 2048 wide: 50.4M parameters, 200 MB fp32, AdamW's two moments 400 MB (--width; the ranks read it here)
WIDTH = int(os.environ.get("BENCH_DISTRIBUTED_WIDTH", "2048"))


def rank_main(mode: str, steps: int, out: Path) -> None:
    """One rank (started with torchrun's variables): train, then write its numbers as JSON."""
    import json
    import resource
    import time

    import torch
    import torch.distributed as dist
    from torch import nn

    from gradwise.optim import adamw
    from gradwise.train import Callback, Trainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    torch.manual_seed(0)
    layers = [m for _ in range(LAYERS) for m in (nn.Linear(WIDTH, WIDTH), nn.ReLU())]
    model = nn.Sequential(*layers, nn.Linear(WIDTH, 4))
    opt = adamw(model.named_parameters(), lr=1e-4, weight_decay=0.01)
    times: list[float] = []

    class Clock(Callback):
        def on_batch_start(self, state):
            self.t0 = time.perf_counter()

        def on_step_end(self, state):
            times.append(time.perf_counter() - self.t0)

    held = {}

    class Held(Callback):
        def on_before_step(self, state):  # gradients present; optimizer state after step 1
            def local(t):
                return t.to_local() if hasattr(t, "to_local") else t

            params = list(state.model.parameters())
            state_t = [v for st in state.optimizer.state.values() for v in st.values()
                       if isinstance(v, torch.Tensor)]  # fmt: skip
            held["bytes"] = sum(
                local(t).numel() * local(t).element_size()
                for t in [*params, *(p.grad for p in params if p.grad is not None), *state_t]
            )

    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(8 * 2 * steps, WIDTH, generator=g), torch.randint(0, 4, (8 * 2 * steps,))
    t = Trainer(model, opt, nn.CrossEntropyLoss(), epochs=1, batch_size=8, shuffle=False,
                distributed="fsdp" if mode == "fsdp" else True, callbacks=[Clock(), Held()])  # fmt: skip
    t.fit((X, y))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "peak_mib": (peak - before) / 1024,
        "held_mib": held["bytes"] / 2**20,
        "step_s": sorted(times[1:])[len(times[1:]) // 2],  # median, the first step excluded
    }
    (out / f"{mode}_rank{dist.get_rank()}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(mode: str, steps: int, out: Path, fixed_mmap: bool) -> list[dict]:
    import json

    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1", "WORLD_SIZE": "2"}  # fmt: skip
    if fixed_mmap:
        # glibc raises its mmap threshold after the first large free, so freed
        # communication buffers stay in the heap and in RSS; a fixed threshold
        # makes RSS follow live memory (for both modes alike), at a cost in time.
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    cmd = [sys.executable, __file__, "--rank-of", mode, "--steps", str(steps), "--out", str(out)]
    procs = [
        subprocess.Popen(
            cmd,
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for r in range(2)
    ]
    for p in procs:
        text, _ = p.communicate(timeout=600)
        if p.returncode != 0:
            raise SystemExit(text[-3000:])
    return [json.loads((out / f"{mode}_rank{r}.json").read_text()) for r in range(2)]


def fsdp_vs_ddp(steps: int) -> None:
    n = LAYERS * (WIDTH * WIDTH + WIDTH) + WIDTH * 4 + 4
    print(f"model: {LAYERS} × Linear({WIDTH}, {WIDTH}) + head, {n / 1e6:.1f}M parameters, "
          f"AdamW, batch 8 per rank, {steps} steps, 2 processes (gloo)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        # memory with a fixed mmap threshold; time with glibc's defaults
        mem = {m: run_ranks(m, steps, Path(tmp), fixed_mmap=True) for m in ("ddp", "fsdp")}
        fast = {m: run_ranks(m, steps, Path(tmp), fixed_mmap=False) for m in ("ddp", "fsdp")}
    rows = (
        ("peak_mib", "peak RSS added, MiB (fixed mmap threshold)", mem),
        ("peak_mib", "peak RSS added, MiB (glibc defaults)", fast),
        ("held_mib", "params+grads+state, MiB", mem),
        ("step_s", "step time, s (median, glibc defaults)", fast),
    )
    print("\n| per rank (max of 2) | DDP | FSDP | FSDP / DDP |\n|---|---|---|---|")
    for key, label, res in rows:
        d, f = (max(r[key] for r in res[m]) for m in ("ddp", "fsdp"))
        print(f"| {label} | {d:.3g} | {f:.3g} | {f / d:.2f} |")
    d, f = (max(r["peak_mib"] for r in mem[m]) for m in ("ddp", "fsdp"))
    print(f"\npeak memory per rank, FSDP / DDP: {f / d:.2f} (goal <= 0.6)")


# -- part 2: sweeps on PostgreSQL ---------------------------------------------------------


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


def run_once(pg, url: str, tmp: Path, tag: str, workers: int, n: int, epochs: int) -> float:
    import yaml

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
    ap.add_argument("--part", choices=("all", "fsdp", "sweep"), default="all")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--width", type=int, default=None, help="layer width of the FSDP/DDP model (default 2048)")
    ap.add_argument("--rank-of", choices=("ddp", "fsdp"), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.width:
        os.environ["BENCH_DISTRIBUTED_WIDTH"] = str(args.width)
        global WIDTH
        WIDTH = args.width
    steps = args.steps or (3 if args.quick else 5)
    if args.rank_of:
        rank_main(args.rank_of, steps, args.out)
        return
    if args.part in ("all", "fsdp"):
        fsdp_vs_ddp(steps)
    if args.part == "fsdp":
        return
    pg = _pg()
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
                rate = run_once(pg, url, Path(tmp), f"r{r}_w{workers}", workers, n, args.epochs)
                rates[workers].append(rate)
                print(f"repeat {r}: {workers} worker(s): {rate:,.0f} trials/hour")
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"\n| workers | trials/hour (median of {repeats}) |\n|---|---|")
    print(f"| 1 | {one:,.0f} |\n| 2 | {two:,.0f} |")
    print(f"\n2 workers / 1 worker: {two / one:.2f} (goal >= 1.8)")


if __name__ == "__main__":
    main()
