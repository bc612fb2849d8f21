"""Multi-process training (DDP): sharding, combined metrics, rank-0 files, resume.

Fast tests check the pieces in this process (shards against
``DistributedSampler``, merged metric states against one pass over all the
data and scikit-learn, a one-rank process group against a plain run). The
slow ones start 2 processes on 127.0.0.1 with the gloo backend: they must
reach the weights of 1 process with the same global batch, and a 2-process
run stopped and resumed must end bit for bit where an uninterrupted one does.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sklearn.metrics import r2_score
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from gradwise.errors import CheckpointError, ConfigError
from gradwise.train import (
    Checkpoint,
    get_metric,
    is_main_process,
    load_checkpoint,
    process_rank,
    world_size,
)
from gradwise.train._data import make_batches
from gradwise.train._distributed import check_metrics, for_rank, merge_states
from gradwise.train._shard import Shard

WORKER_PATH = Path(__file__).with_name("_ddp_worker.py")
_spec = importlib.util.spec_from_file_location("_ddp_worker", WORKER_PATH)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

CPU = torch.device("cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        GLOO_SOCKET_IFNAME="lo",  # gloo on the loopback interface only
        OMP_NUM_THREADS="1",
    )
    return env


def run_ranks(scenario: str, out: Path, nproc: int = 2, timeout: float = 600) -> None:
    """Start ``nproc`` workers with the variables torchrun sets, on 127.0.0.1."""
    env = launch_env(free_port())
    procs = []
    for rank in range(nproc):
        env_r = dict(
            env,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(nproc),
            LOCAL_WORLD_SIZE=str(nproc),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER_PATH), scenario, str(out)],
                env=env_r,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rank, (p, text) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"rank {rank} failed:\n{text[-3000:]}"


def run_torchrun(scenario: str, out: Path, nproc: int = 2, timeout: float = 600) -> None:
    port = free_port()
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
        f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1", f"--master_port={port}",
        "--max_restarts=0", str(WORKER_PATH), scenario, str(out),
    ]  # fmt: skip
    res = subprocess.run(cmd, env=launch_env(port), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


# -- sharding ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [7, 10, 12, 2])
@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_are_those_of_distributed_sampler(n, world, shuffle):
    for rank in range(world):
        ref = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=4)
        ref.set_epoch(2)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(6)) if shuffle else None
        ours = Shard(rank, world, pad=True).indices(n, perm)
        assert ours.tolist() == list(ref)


def test_eval_shards_cover_every_example_once():
    n, world = 11, 3
    parts = [Shard(r, world, pad=False).indices(n, None).tolist() for r in range(world)]
    assert sorted(sum(parts, [])) == list(range(n))
    assert [len(p) for p in parts] == [Shard(r, world, pad=False).size(n) for r in range(world)]


@pytest.mark.parametrize("n", [24, 20])
def test_rank_batches_together_are_the_one_process_batch(n):
    # Example i carries the value i, so a batch shows which examples it holds.
    X, y = torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.zeros(n)
    world, bs = 2, 4

    def batches(shard, batch_size):
        g = torch.Generator().manual_seed(9)
        b, _ = make_batches(
            (X, y), what="train", batch_size=batch_size, shuffle=True, device=CPU,
            generator=g, shard=shard,
        )  # fmt: skip
        epochs = [[x[0].flatten().long().tolist() for x, _ in b.epoch(g)] for _ in range(2)]
        return epochs, len(b), g.get_state()

    one, one_len, one_state = batches(None, bs * world)
    ranks = [batches(Shard(r, world, pad=True), bs) for r in range(world)]
    for epoch in range(2):
        for i, whole in enumerate(one[epoch]):
            together = sorted(sum((r[0][epoch][i] for r in ranks), []))
            assert together == sorted(whole)
    for _, rank_len, state in ranks:
        assert rank_len == one_len  # the same number of steps as the big batch
        assert torch.equal(state, one_state)  # and the same draws from the generator


def test_dataset_and_tuple_give_the_same_shards():
    X, y = worker.data(30, 0)
    shard = Shard(1, 2, pad=True)
    out = []
    for data in ((X, y), worker.Plain(X, y)):
        g = torch.Generator().manual_seed(2)
        b, _ = make_batches(
            data, what="train", batch_size=4, shuffle=True, device=CPU, generator=g,
            shard=shard,
        )  # fmt: skip
        out.append([(xb[0], yb) for _ in range(2) for xb, yb in b.epoch(g)])
    assert len(out[0]) == len(out[1]) == 2 * 4  # ceil(15 / 4) batches per epoch
    for (xa, ya), (xb, yb) in zip(*out):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


# -- combining metrics across ranks ----------------------------------------------------


def _states(name, outputs, targets, cuts):
    states = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        m = get_metric(name)
        m.reset()
        if hi > lo:
            m.update(outputs[lo:hi], targets[lo:hi])
        states.append(m.state_dict())
    return states


@pytest.mark.parametrize("name", ["accuracy", "mse", "mae", "r2"])
def test_merged_metric_states_equal_one_pass(name):
    g = torch.Generator().manual_seed(0)
    if name == "accuracy":
        out, y = torch.randn(50, 4, generator=g), torch.randint(0, 4, (50,), generator=g)
    else:  # a large mean: the R2 merge must not cancel
        y = 1000 + torch.randn(50, 2, generator=g, dtype=torch.float64)
        out = y + 0.5 * torch.randn(50, 2, generator=g, dtype=torch.float64)
    cuts = [0, 17, 17, 40, 50]  # 4 "ranks", one of them empty
    whole = get_metric(name)
    whole.update(out, y)
    m = get_metric(name)
    m.load_state_dict(merge_states(m, _states(name, out, y, cuts)))
    assert m.compute() == pytest.approx(whole.compute(), rel=1e-12)
    if name == "r2":
        assert m.compute() == pytest.approx(r2_score(y.numpy(), out.numpy()), rel=1e-9)


def test_metric_without_mergeable_state_is_refused():
    class Median:
        name, higher_is_better = "median", False

        def reset(self): ...
        def update(self, output, target): ...
        def compute(self):
            return 0.0

    check_metrics([get_metric("accuracy"), get_metric("r2")])
    with pytest.raises(ConfigError, match="'median' cannot be combined across processes"):
        check_metrics([Median()])


# -- checkpoints --------------------------------------------------------------------------


def _ckpt(world, epoch_done):
    ranks = [
        {"rng": f"rng{r}", "rng_epoch_start": f"start{r}", "epoch_sums": r} for r in range(world)
    ]
    return {
        "position": {"epoch": 2, "epoch_done": epoch_done},
        "rng": "rng0",
        "rng_epoch_start": "start0",
        "epoch_sums": 0,
        **({"distributed": {"world_size": world, "ranks": ranks}} if world > 1 else {}),
    }


def test_each_rank_resumes_from_its_own_rng_and_sums():
    ckpt = _ckpt(3, epoch_done=False)
    mine = for_rank(ckpt, "c.pt", 2, 3)
    assert (mine["rng"], mine["rng_epoch_start"], mine["epoch_sums"]) == ("rng2", "start2", 2)
    with pytest.raises(
        CheckpointError, match=r"written by 3 process\(es\) in the middle of epoch 2"
    ):
        for_rank(ckpt, "c.pt", 0, 2)
    with pytest.raises(CheckpointError, match="with 1 process"):
        for_rank(_ckpt(1, epoch_done=False), "c.pt", 0, 2)
    # At an epoch boundary another number of processes may resume.
    assert for_rank(_ckpt(3, epoch_done=True), "c.pt", 3, 4)["rng"] == "rng0"
    assert for_rank(_ckpt(3, epoch_done=True), "c.pt", 1, 2)["rng"] == "rng1"


# -- one process ------------------------------------------------------------------------


def test_single_process_stays_single(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    X, y = worker.data(40, 0)
    t = worker.sgd_trainer(16)
    t.fit((X, y))
    assert not torch.distributed.is_initialized()
    assert (is_main_process(), process_rank(), world_size()) == (True, 0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")  # a torchrun worker before fit: read from its env
    assert (is_main_process(), process_rank(), world_size()) == (False, 1, 2)


def test_distributed_argument_is_checked(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="distributed must be 'auto', True, False, 'ddp', 'fsdp'"):
        worker.sgd_trainer(16, distributed="yes")
    t = worker.sgd_trainer(16, distributed=True)
    with pytest.raises(ConfigError, match="missing: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT"):
        t.fit(worker.data(40, 0))


@pytest.fixture
def one_rank_group(monkeypatch):
    """torchrun's variables for a world of one process; the group is destroyed afterwards."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    yield
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def test_one_rank_ddp_equals_the_plain_loop(one_rank_group, tmp_path):
    X, y = worker.data(worker.N, 0)
    val = worker.data(worker.N_VAL, 1)
    plain = worker.sgd_trainer(16, grad_accum=2)
    h_plain = plain.fit((X, y), val=val)
    assert not torch.distributed.is_initialized()  # "auto" with one process: no DDP
    ddp = worker.sgd_trainer(16, grad_accum=2, distributed=True, callbacks=[Checkpoint(tmp_path)])
    h_ddp = ddp.fit((X, y), val=val)
    assert torch.distributed.is_initialized()
    for k, v in plain.model.state_dict().items():
        assert torch.equal(ddp.model.state_dict()[k], v), k
    drop = ("epoch_time",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in h_ddp] == [
        {k: v for k, v in r.items() if k not in drop} for r in h_plain
    ]
    # The checkpoint carries the state of each rank, and the bare model's keys.
    ckpt = load_checkpoint(tmp_path / "epoch-0003.pt")
    assert ckpt["distributed"]["world_size"] == 1
    assert len(ckpt["distributed"]["ranks"]) == 1
    assert set(ckpt["model"]) == set(plain.model.state_dict())
    # A second fit wraps the model again; an unsharded DataLoader is fine with one rank.
    loader = DataLoader(TensorDataset(X, y), batch_size=16)
    assert len(ddp.fit(loader)) == 3


# -- two processes ------------------------------------------------------------------------


def _close(a, b):
    return a == pytest.approx(b, rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_two_ranks_reach_the_weights_of_one_process(tmp_path):
    """torchrun, 2 × batch 16 against 1 × batch 32: same weights, same global records."""
    run_torchrun("match", tmp_path)
    X, y = worker.data(worker.N, 0)
    val = worker.data(worker.N_VAL, 1)
    cases = {
        "tuple": ("multiclass", (X, y), val),
        "dataset": ("multiclass", (X, y), val),
        "regression": (
            "regression",
            worker.data(worker.N, 2, "regression"),
            worker.data(worker.N_VAL, 3, "regression"),
        ),
    }
    for name, (task, train, valid) in cases.items():
        ref = worker.sgd_trainer(32, task)
        history = ref.fit(train, val=valid)
        ranks = [torch.load(tmp_path / f"{name}_rank{r}.pt", weights_only=True) for r in (0, 1)]
        assert [(r["rank"], r["world"], r["main"]) for r in ranks] == [(0, 2, True), (1, 2, False)]
        for k, v in ref.model.state_dict().items():
            assert torch.allclose(ranks[0]["state"][k], v, rtol=1e-5, atol=1e-6), (name, k)
            assert torch.equal(ranks[0]["state"][k], ranks[1]["state"][k])
        for ours, other, theirs in zip(
            ranks[0]["history"], ranks[1]["history"], history, strict=True
        ):
            ours.pop("epoch_time")
            other.pop("epoch_time")
            assert ours == other  # every rank logs the same global numbers
            for key, value in theirs.items():
                if key == "epoch_time":
                    continue
                if key.endswith("accuracy") or key in ("type", "epoch", "step", "batches"):
                    assert ours[key] == value, (name, key)  # counts: exactly equal
                else:
                    assert _close(ours[key], value), (name, key, ours[key], value)


def _records(path):
    out = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r.get("kind") == "resume":
            continue
        r.pop("epoch_time", None)
        if "path" in r:  # the two runs write to different directories
            r["path"] = Path(r["path"]).name
        out.append(r)
    return out


@pytest.mark.slow
def test_two_ranks_resume_bit_for_bit_and_only_rank0_writes(tmp_path):
    run_ranks("crash", tmp_path)  # a run that crashes at step 7, then one that does not
    # Only rank 0 wrote: rank 1 named its own directory for the same files.
    assert (tmp_path / "full0" / "metrics.jsonl").is_file()
    assert (tmp_path / "full0" / "ckpt" / "latest").is_file()
    assert not (tmp_path / "full1").exists()
    ckpt = load_checkpoint(tmp_path / "run" / "ckpt" / "step-00000006.pt")
    ranks = ckpt["distributed"]["ranks"]
    assert ckpt["distributed"]["world_size"] == 2 and len(ranks) == 2
    # Dropout draws differ between the ranks, so each needs its own RNG state back.
    assert not torch.equal(ranks[0]["rng"]["global"]["torch"], ranks[1]["rng"]["global"]["torch"])
    assert torch.equal(ranks[0]["rng"]["shuffle"], ranks[1]["rng"]["shuffle"])

    run_ranks("resume", tmp_path)  # new processes continue from step 6
    for r in (0, 1):
        full = torch.load(tmp_path / f"full_rank{r}.pt", weights_only=True)
        resumed = torch.load(tmp_path / f"resumed_rank{r}.pt", weights_only=True)
        for k, v in full["state"].items():
            assert torch.equal(resumed["state"][k], v), (r, k)
        strip = [{k: v for k, v in h.items() if k != "epoch_time"} for h in full["history"]]
        assert [
            {k: v for k, v in h.items() if k != "epoch_time"} for h in resumed["history"]
        ] == strip
    assert [e["kind"] for e in resumed["events"]].count("resume") == 1
    # The resumed log reads as the uninterrupted one, written once.
    assert _records(tmp_path / "run" / "metrics.jsonl") == _records(
        tmp_path / "full0" / "metrics.jsonl"
    )
