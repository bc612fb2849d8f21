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
random sweep (digits, an MLP of 128×128 hidden units, 24 epochs: a trial is
about 0.6 s of CPU, nearly all of it training, so the per-trial fixed costs do
not dominate) runs once with 1 worker process and once with 2, each started
separately with ``gradwise sweep --storage URL`` as on separate machines,
with ``GRADWISE_THREADS=1`` (two workers on 2 cores would take 1 thread each
by themselves; this holds the 1-worker runs to 1 thread too). Throughput is
counted from the database: finished trials divided by the time from the
first trial's start to the last trial's end, per hour (a worker imports and
loads the data before it takes its first trial; the launch-to-exit rate,
start-up included, is printed beside it). Every trial must be COMPLETE,
none lost or duplicated. Because a shared machine makes wall times
pessimistic, the CPU is accounted too: training CPU per trial (each trial
records it), each worker's CPU outside its trials (``wait4``: start-up and
the study's round trips), the PostgreSQL server's CPU (its postmaster's
reaped children) and how many cores the whole machine was busy (all users,
``/proc/stat``), and how far apart the workers' first trials start and
their last ones end. Repeats alternate 1 and 2 workers; the ratio is that of
medians. First, one worker runs the same sweep with its CPU split by phase
(imports, config, storage, warm-up, trials, loop, report), SQL statements
and fsyncs per trial counted (``--part phases`` runs only that).

    python benchmarks/bench_distributed.py            # both parts; 12 trials, 3 repeats
    python benchmarks/bench_distributed.py --quick    # 8 trials, 1 repeat, fewer steps
    python benchmarks/bench_distributed.py --part fsdp
    python benchmarks/bench_distributed.py --part phases --quick   # one worker's CPU by phase
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
    """A random sweep whose trials are dominated by training (digits, a 128×128 MLP)."""
    return {
        "name": name,
        "runs_dir": str(runs_dir),
        "data": {"name": "digits", "seed": 0},
        "model": {"hidden": [128, 128]},
        "training": {"epochs": epochs, "batch_size": 32, "seed": 0, "device": "cpu"},
        "sweep": {
            "method": "random",
            "n_trials": n,
            "seed": 0,
            "pruner": "none",
            "metric": "val_loss",
            "params": {"optimizer.lr": {"low": 1e-3, "high": 0.1, "log": True}},
        },
    }


_TICK = os.sysconf("SC_CLK_TCK")


def _postmaster_cpu(port: int) -> float:
    """CPU seconds of the PostgreSQL server on ``port``: the postmaster and every backend it reaped."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if Path(cmd[0].decode(errors="replace")).name == "postgres" and str(port).encode() in cmd:
            fields = stat.rsplit(")", 1)[1].split()
            # utime, stime, cutime, cstime (fields 14-17); live backends are counted once they exit
            return sum(int(f) for f in fields[11:15]) / _TICK
    return float("nan")


def _busy_cores() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, every process of every user (/proc/stat)."""
    parts = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def trial_stats(url: str, name: str) -> dict:
    """From the database: finished trials, their span (first start to last end) and training seconds."""
    import optuna

    from gradwise.sweep._storage import open_storage, quiet_optuna

    with quiet_optuna():
        study = optuna.load_study(study_name=name, storage=open_storage(url))
        # a worker that loses the race for the last slot closes its trial as a surplus one
        trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    done = [t for t in trials if t.state.name == "COMPLETE"]
    numbers = sorted(t.number for t in done)
    if len(done) != len(trials) or len(set(numbers)) != len(numbers):
        states = [(t.number, t.state.name) for t in trials]
        raise SystemExit(f"bench_distributed: {name}: trials lost or unfinished: {states}")
    start = min(t.datetime_start for t in done)
    end = max(t.datetime_complete for t in done)
    # per worker: when its first trial started and its last one ended
    firsts: dict[str, float] = {}
    lasts: dict[str, float] = {}
    for t in done:
        w = t.user_attrs.get("worker", "?")
        a, b = (t.datetime_start - start).total_seconds(), (t.datetime_complete - start).total_seconds()
        firsts[w], lasts[w] = min(firsts.get(w, a), a), max(lasts.get(w, b), b)
    return {
        "done": len(done),
        "span_s": (end - start).total_seconds(),
        # the later worker's first trial starts this much after the first one (start-up skew)
        "start_skew_s": max(firsts.values()) - min(firsts.values()),
        # one worker is done (and waits) this long before the last trial ends
        "end_skew_s": max(lasts.values()) - min(lasts.values()),
        "train_s": sum(t.user_attrs["run"]["seconds"] for t in done),
        "train_cpu_s": sum(t.user_attrs["run"]["cpu_seconds"] for t in done),
    }


def run_once(pg, url: str, tmp: Path, tag: str, workers: int, n: int, epochs: int) -> dict:
    """One sweep with ``workers`` separate ``gradwise sweep`` processes; wall and CPU accounted."""
    import time

    import yaml

    name = f"bench_{tag}"
    db = pg.new_database(url, name)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(sweep_raw(name, tmp / "runs", n, epochs)))
    # several workers share the cores: one torch thread each (the documented knob)
    env = {**os.environ, "GRADWISE_THREADS": "1"}
    env.pop("OMP_NUM_THREADS", None)
    cmd = [sys.executable, "-m", "gradwise", "sweep", str(cfg), "--storage", db]
    pg_cpu0, (busy0, all0) = _postmaster_cpu(port), _busy_cores()
    t0 = time.perf_counter()
    procs = []
    for w in range(workers):
        err = open(tmp / f"{name}.{w}.err", "w+")  # noqa: SIM115 (closed below)
        procs.append((subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err), err))
    cpu = []
    for p, err in procs:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read()
        err.close()
        if p.returncode != 0:
            raise SystemExit(text[-3000:])
        cpu.append(usage.ru_utime + usage.ru_stime)
    wall = time.perf_counter() - t0
    busy1, all1 = _busy_cores()
    stats = trial_stats(db, name)
    cores = os.cpu_count() or 1
    return {
        **stats,
        "wall_s": wall,
        "worker_cpu_s": cpu,
        "pg_cpu_s": _postmaster_cpu(port) - pg_cpu0,
        "machine_busy_cores": (busy1 - busy0) / max(1, all1 - all0) * cores,
        "rate": stats["done"] / stats["span_s"] * 3600,
        "rate_e2e": stats["done"] / wall * 3600,
    }


def sweep_throughput(n: int, epochs: int, repeats: int, phases_only: bool = False) -> None:
    pg = _pg()
    why = pg.missing()
    if why is not None:
        raise SystemExit(f"bench_distributed: {why}")
    cores = os.cpu_count() or 1
    print(f"\ncpu cores: {cores}, trials per sweep: {n}, digits, MLP 128×128, {epochs} epochs per "
          f"trial, GRADWISE_THREADS=1; load average before: {os.getloadavg()[0]:.1f}")  # fmt: skip
    runs: dict[int, list[dict]] = {1: [], 2: []}
    with pg.postgres_server() as url, tempfile.TemporaryDirectory() as tmp:
        phase_table(pg, url, Path(tmp), n, epochs)
        if phases_only:
            return
        for r in range(repeats):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                res = run_once(pg, url, Path(tmp), f"r{r}_w{workers}", workers, n, epochs)
                runs[workers].append(res)
                cpu, done = sum(res["worker_cpu_s"]), res["done"]
                print(
                    f"repeat {r}, {workers} worker(s): {res['rate']:,.0f} trials/hour "
                    f"({res['rate_e2e']:,.0f} from launch to exit), wall {res['wall_s']:.1f} s; "
                    f"per trial: training {res['train_s'] / done:.2f} s wall, "
                    f"{res['train_cpu_s'] / done:.2f} s CPU; per worker outside its trials "
                    f"(start-up, study): {(cpu - res['train_cpu_s']) / workers:.2f} s CPU; "
                    f"first trials {res['start_skew_s']:.2f} s apart, last ones "
                    f"{res['end_skew_s']:.2f} s apart; "
                    f"PostgreSQL {res['pg_cpu_s']:.2f} s CPU; machine busy "
                    f"{res['machine_busy_cores']:.2f} of {cores} cores (all users)"
                )

    def med(w: int, key: str) -> float:
        return statistics.median(r[key] / (r["done"] if key.startswith("train") else 1)
                                 for r in runs[w])  # fmt: skip

    for rs in runs.values():
        for r in rs:
            r["outside_cpu_s"] = (sum(r["worker_cpu_s"]) - r["train_cpu_s"]) / len(
                r["worker_cpu_s"]
            )
    head = f"| per sweep (median of {repeats}) | 1 worker | 2 workers | 2 / 1 |"
    print(f"\n{head}\n|---|---|---|---|")
    rows = (
        ("trials/hour, first trial start to last trial end", "rate"),
        ("trials/hour, launch to exit (start-up included)", "rate_e2e"),
        ("training wall s per trial", "train_s"),
        ("training CPU s per trial", "train_cpu_s"),
        ("CPU s per worker outside its trials (start-up, study)", "outside_cpu_s"),
        ("PostgreSQL CPU s per sweep", "pg_cpu_s"),
        ("workers' first trials apart, s (start-up skew)", "start_skew_s"),
        ("workers' last trials apart, s (one waits)", "end_skew_s"),
        ("machine busy cores, all users", "machine_busy_cores"),
    )
    for label, key in rows:
        a, b = med(1, key), med(2, key)
        ratio = f"{b / a:.2f}" if a else "-"
        print(f"| {label} | {a:,.2f} | {b:,.2f} | {ratio} |")
    one, two = med(1, "rate"), med(2, "rate")
    print(f"\n2 workers / 1 worker: {two / one:.2f} (goal >= 1.8)")


def worker_phases(cfg_path: Path, url: str, out: Path) -> None:
    """One ``gradwise sweep CONFIG --storage URL`` worker, its CPU split by phase (JSON to ``out``).

    Runs in its own process (``--worker-phases``): the CLI's own entry point,
    with gradwise's sweep functions wrapped in CPU clocks. The training runs'
    CPU is what each trial records; everything else is the worker's overhead.
    Also counted: SQL statements per trial and fsyncs per trial (with their
    wall time: the disk, not the CPU).
    """
    import json
    import time

    cpu = time.process_time
    phases: dict[str, float] = {"python start-up": cpu()}
    fsyncs = [0, 0.0]
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        t = time.perf_counter()
        real_fsync(fd)
        fsyncs[0] += 1
        fsyncs[1] += time.perf_counter() - t

    os.fsync = fsync
    t = cpu()
    import gradwise.cli

    phases["import gradwise.cli"] = cpu() - t
    t = cpu()
    import gradwise.sweep._study as study_mod
    import gradwise.sweep._trial as trial_mod

    phases["import gradwise.sweep (torch, pydantic, configs, Trainer)"] = cpu() - t
    sent = [0, False]  # statements while trials run; counting on

    def clocked(mod, name, label, after=None):
        real = getattr(mod, name)

        def wrapper(*a, **k):
            t0 = cpu()
            try:
                return real(*a, **k)
            finally:
                phases[label] = phases.get(label, 0.0) + cpu() - t0
                if after is not None:
                    after()

        setattr(mod, name, wrapper)

    def count_statements() -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        def on(*args):
            sent[0] += sent[1]

        if not event.contains(Engine, "before_cursor_execute", on):
            event.listen(Engine, "before_cursor_execute", on)

    def counting(on: bool):
        return lambda: sent.__setitem__(1, on)

    clocked(study_mod, "load_sweep_config", "config validation (torch._dynamo via torch.optim)")
    clocked(study_mod, "open_storage", "open storage (Optuna, SQLAlchemy, alembic, psycopg)",
            after=count_statements)  # fmt: skip
    clocked(study_mod, "open_study", "open or create the study")
    clocked(study_mod, "_warm_up", "warm-up (the recipe, scikit-learn, the data)",
            after=counting(True))  # fmt: skip
    clocked(study_mod, "write_sweep_report", "sweep report (matplotlib)")
    clocked(trial_mod.Objective, "__call__", "objective")
    real_report = study_mod.write_sweep_report

    def report(*a, **k):
        counting(False)()
        return real_report(*a, **k)

    study_mod.write_sweep_report = report
    t_fsync = fsyncs[:]
    try:
        gradwise.cli.main(["sweep", str(cfg_path), "--storage", url])
    except SystemExit as exc:
        if exc.code:
            raise
    total = cpu()
    stats = trial_stats(url, yaml_name(cfg_path))
    train_cpu = stats["train_cpu_s"]
    phases["trials: training runs"] = train_cpu
    phases["trials: the sweep's part (suggest, config, record)"] = (
        phases.pop("objective") - train_cpu
    )
    phases["worker loop (ask/tell, study reads)"] = total - sum(phases.values())
    done = stats["done"]
    result = {
        "phases": phases,
        "total_cpu_s": total,
        "outside_cpu_s": total - train_cpu,
        "done": done,
        "statements_per_trial": sent[0] / done,
        "fsyncs_per_trial": (fsyncs[0] - t_fsync[0]) / done,
        "fsync_wall_per_trial_s": (fsyncs[1] - t_fsync[1]) / done,
    }
    out.write_text(json.dumps(result))


def yaml_name(cfg_path: Path) -> str:
    import yaml

    return yaml.safe_load(cfg_path.read_text())["name"]


def phase_table(pg, url: str, tmp: Path, n: int, epochs: int) -> None:
    """Where one worker's CPU goes (1 worker, the throughput sweep's workload)."""
    import json

    import yaml

    name = "bench_phases"
    db = pg.new_database(url, name)
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(sweep_raw(name, tmp / "runs", n, epochs)))
    out = tmp / "phases.json"
    env = {**os.environ, "GRADWISE_THREADS": "1"}
    env.pop("OMP_NUM_THREADS", None)
    cmd = [sys.executable, __file__, "--worker-phases", str(cfg), "--storage", db, "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    r = json.loads(out.read_text())
    print(f"\none worker, {r['done']} trials: where its CPU goes\n\n| phase | CPU s |\n|---|---|")
    for label, value in r["phases"].items():
        print(f"| {label} | {value:.2f} |")
    print(f"| **outside its training runs** | **{r['outside_cpu_s']:.2f}** |")
    print(f"\nper trial: {r['statements_per_trial']:.0f} SQL statements, "
          f"{r['fsyncs_per_trial']:.0f} fsyncs ({r['fsync_wall_per_trial_s'] * 1e3:.0f} ms wall)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=24, help="epochs per sweep trial")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument(
        "--part",
        choices=("all", "fsdp", "sweep", "phases"),
        default="all",
        help="phases: only where one sweep worker's CPU goes",
    )
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument(
        "--width", type=int, default=None, help="layer width of the FSDP/DDP model (default 2048)"
    )
    ap.add_argument("--rank-of", choices=("ddp", "fsdp"), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--worker-phases", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--storage", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_phases:
        worker_phases(args.worker_phases, args.storage, args.out)
        return
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
    n = args.trials or (8 if args.quick else 12)
    repeats = args.repeats or (1 if args.quick else 3)
    sweep_throughput(n, args.epochs, repeats, phases_only=args.part == "phases")


if __name__ == "__main__":
    main()
