"""FSDP2 under the Trainer: sharding per block, optimizers on DTensors, equality with one process.

Fast tests run a one-rank process group in this process (parameters are
DTensors all the same, so every optimizer step goes through DTensor
dispatch) and compare with the plain loop. The slow one starts 2 processes on
127.0.0.1 with gloo: FSDP with a per-process batch B must follow the loss
trajectory of 1 process with batch 2B within fp32 round-off, on an MLP and
on a tiny random Llama, with LoRA and activation checkpointing too.
"""

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from gradwise import optim
from gradwise.errors import ConfigError
from gradwise.train import FSDP
from gradwise.train._fsdp import blocks, check_optimizer

WORKER_PATH = Path(__file__).with_name("_fsdp_worker.py")
_spec = importlib.util.spec_from_file_location("_fsdp_worker", WORKER_PATH)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(scenario: str, out: Path, nproc: int = 2, timeout: float = 240, extra=None):
    """Start ``nproc`` workers with torchrun's variables on 127.0.0.1; returns their outputs."""
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    env.update(GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", **(extra or {}))
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER_PATH), scenario, str(out)],
            env=dict(env, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(nproc)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(nproc)
    ]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [(p.returncode, text) for p, text in zip(procs, outputs)]


@pytest.fixture
def one_rank_group(monkeypatch):
    """torchrun's variables for a world of one process; the group is destroyed afterwards."""
    for k, v in dict(
        RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()), GLOO_SOCKET_IFNAME="lo",
    ).items():  # fmt: skip
        monkeypatch.setenv(k, v)
    yield
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


# -- configuration ----------------------------------------------------------------------


def test_fsdp_settings_are_checked():
    with pytest.raises(ConfigError, match="mixed_precision must be one of fp32, bf16, got 'fp16'"):
        FSDP(mixed_precision="fp16")
    with pytest.raises(ConfigError, match="activation_checkpointing must be true or false"):
        FSDP(activation_checkpointing="yes")
    with pytest.raises(ConfigError, match="'ddp', 'fsdp' or gradwise.train.FSDP"):
        worker.mlp_trainer(16, "zero3")
    assert FSDP("bf16").policy().param_dtype is torch.bfloat16
    assert FSDP("bf16").policy().reduce_dtype is torch.float32
    assert FSDP().policy().param_dtype is None  # fp32: parameters as they are


def test_blocks_are_decoder_layers_or_layer_groups():
    lm = worker.CausalLM()
    assert [b[0] for b in blocks(lm)] == list(lm.lm.model.layers)
    from gradwise.nn import MLP

    mlp = MLP(4, [8, 8], 2)
    assert len(blocks(mlp)) == 3  # block0, block1, head: gradwise's layer groups
    seq = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    assert [b[0] for b in blocks(seq)] == [seq[0], seq[2]]


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda p: optim.muon(p, lr=0.02), "muon"),
        (lambda p: optim.lamb(p, lr=1e-3), "lamb"),
        (lambda p: optim.lars(p, lr=0.1), "lars"),
        (lambda p: optim.adafactor(p, lr=1e-2), "adafactor"),
        (lambda p: optim.lbfgs(p, lr=1.0), "lbfgs"),
        (
            lambda p: optim.Optimizer(
                p,
                [optim.clip_by_global_norm(1.0), optim.scale_by_adam(), optim.scale_by_lr()],
                lr=1e-3,
            ),
            "clip_by_global_norm",
        ),
    ],
)
def test_optimizers_needing_whole_tensors_are_refused(build, name):
    opt = build([nn.Linear(4, 3).weight])
    with pytest.raises(ConfigError, match=rf"cannot run the optimizer {name} \("):
        check_optimizer(opt)
    check_optimizer(optim.adamw(list(nn.Linear(4, 3).parameters()), lr=1e-3))  # elementwise: fine


def test_a_refused_optimizer_fails_before_training(one_rank_group):
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    from gradwise.train import Trainer

    t = Trainer(model, optim.lamb(model.parameters(), lr=0.02), nn.CrossEntropyLoss(),
                distributed="fsdp")  # fmt: skip
    with pytest.raises(ConfigError, match="cannot run the optimizer lamb"):
        t.fit(worker.mlp_data())
    assert not any(hasattr(p, "full_tensor") for p in model.parameters())  # nothing sharded


# -- one rank in this process: DTensor parameters, the plain loop's numbers ---------------

ELEMENTWISE = {
    "sgd": lambda p: optim.sgd(p, lr=0.1, momentum=0.9, nesterov=True),
    "adamw": lambda p: optim.adamw(p, lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda p: optim.rmsprop(p, lr=1e-2, momentum=0.5),
    "lion": lambda p: optim.lion(p, lr=1e-3, weight_decay=0.1),
    "schedule_free_adamw": lambda p: optim.schedule_free_adamw(p, lr=1e-2),
}


def _mlp(opt_name, **kw):
    from gradwise.train import Trainer

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    return Trainer(
        model, ELEMENTWISE[opt_name](model.named_parameters()), nn.CrossEntropyLoss(),
        epochs=2, batch_size=16, seed=1, callbacks=[worker.Losses()], **kw,
    )  # fmt: skip


def test_gradwise_optimizers_step_on_sharded_parameters(one_rank_group):
    for name in ELEMENTWISE:
        plain = _mlp(name, distributed=False, clip_grad_norm=1.0)
        plain.fit(worker.mlp_data())
        sharded = _mlp(name, distributed="fsdp", clip_grad_norm=1.0)
        sharded.fit(worker.mlp_data())
        assert all(type(p).__name__ == "DTensor" for p in sharded.model.parameters())
        assert sharded.callbacks[0].values == pytest.approx(plain.callbacks[0].values, rel=1e-6)
        full = worker.full_state(sharded.model)
        for k, v in plain.model.state_dict().items():
            torch.testing.assert_close(full[k], v, rtol=1e-5, atol=1e-6, msg=f"{name} {k}")


def test_activation_checkpointing_recomputes_each_block(one_rank_group):
    calls = {"n": 0}

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x):
            calls["n"] += 1
            return torch.tanh(self.lin(x))

    from gradwise.train import Trainer

    def run(distributed):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), Block(), Block(), nn.Linear(8, 3))
        t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                    epochs=1, batch_size=32, callbacks=[worker.Losses()], distributed=distributed)  # fmt: skip
        calls["n"] = 0
        t.fit(worker.mlp_data())
        return t.callbacks[0].values, calls["n"]

    plain, n_plain = run(False)
    ckpt, n_ckpt = run(FSDP(activation_checkpointing=True))
    assert n_plain == 2 * 2  # 2 blocks × 2 steps
    assert n_ckpt == 2 * n_plain  # every block's forward runs again in its backward
    assert ckpt == pytest.approx(plain, rel=1e-6)


# -- two processes -------------------------------------------------------------------------


def _mlp_ref(name):
    if name == "mlp_sgd":
        return worker.mlp_trainer(32, False)
    return worker.mlp_trainer(16, False, optimizer="adamw", grad_accum=2, clip_grad_norm=0.5)


@pytest.mark.slow
def test_two_ranks_follow_the_one_process_trajectory(tmp_path):
    """2 × batch B under FSDP against 1 × batch 2B: the same losses and weights."""
    for rank, (rc, text) in enumerate(run_ranks("match", tmp_path)):
        assert rc == 0, f"rank {rank} failed:\n{text[-3000:]}"
    refs = {
        "mlp_sgd": (_mlp_ref("mlp_sgd"), worker.mlp_data(), 1e-6),
        "mlp_adamw": (_mlp_ref("mlp_adamw"), worker.mlp_data(), 1e-6),
        # Adam divides by sqrt(v): where a gradient is ~0, round-off moves a
        # weight by up to lr per step; the losses still agree to round-off.
        "llama": (worker.llama_trainer(8, False), worker.lm_data(), 1e-3),
        "llama_lora": (worker.llama_trainer(8, False, lora=True), worker.lm_data(), 1e-5),
    }
    for name, (ref, data, atol) in refs.items():
        ref.fit(data)
        got = torch.load(tmp_path / f"{name}.pt", weights_only=True)
        want = worker.losses(ref)
        assert len(got["losses"]) == len(want) >= 4
        assert got["losses"] == pytest.approx(want, rel=1e-5), name
        for k, v in ref.model.state_dict().items():
            torch.testing.assert_close(got["state"][k], v, rtol=1e-4, atol=atol, msg=f"{name} {k}")
    # The guard decides on global numbers: both ranks roll back together, at the
    # steps one process does. Diverging SGD amplifies round-off, so the losses
    # agree to round-off only at first; the decisions (events) must agree exactly.
    ref = worker.guarded_trainer(8, False)
    ref.fit(worker.mlp_data())
    got = torch.load(tmp_path / "guard.pt", weights_only=True)
    events = [(e["kind"], e["step"]) for e in ref.history.events]
    assert ref.callbacks[0].retries > 0 and got["events"] == events
    want = worker.losses(ref)
    assert len(got["losses"]) == len(want)
    assert got["losses"][:2] == pytest.approx(want[:2], rel=1e-5)
    # LoRA under FSDP: only the adapters train (2 layers × q,v × A,B).
    got = torch.load(tmp_path / "llama_lora.pt", weights_only=True)
    assert got["trainable"] == 8
    torch.manual_seed(0)
    init = worker.CausalLM(lora=True).state_dict()
    for k, v in init.items():
        if "lora_" not in k:
            assert torch.equal(got["state"][k], v), k  # base weights unchanged
    assert all(got["state"][k].abs().max() > 0 for k in init if "lora_B" in k)  # B left zero
    # bf16 parameters with fp32 reduction: close to fp32, but not fp32.
    bf16 = torch.load(tmp_path / "llama_bf16.pt", weights_only=True)["losses"]
    fp32 = torch.load(tmp_path / "llama.pt", weights_only=True)["losses"]
    assert bf16 == pytest.approx(fp32, rel=2e-2)
    assert bf16 != fp32
    assert bf16[-1] < bf16[0]


def test_distributed_and_checkpoint_modules_import_one_way():
    """_checkpoint imports _distributed; _distributed never imports _checkpoint (no cycle)."""
    import ast

    import gradwise.train._distributed as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "gradwise.train._checkpoint" not in imported
    assert not any(m and m.startswith("gradwise.train._dcp") for m in imported)


def test_divergence_guard_and_schedule_act_on_sharded_parameters(one_rank_group):
    """The guard's rollbacks (snapshots of DTensor state) and an attached schedule, as in one process."""
    from gradwise.schedules import warmup_cosine
    from gradwise.train import DivergenceGuard, Trainer

    def run(distributed):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
        guard = DivergenceGuard(snapshot_every=2, max_retries=5)
        t = Trainer(
            model, optim.sgd(model.named_parameters(), lr=30.0), nn.CrossEntropyLoss(),
            epochs=4, batch_size=8, seed=0, distributed=distributed,
            schedule=lambda n: warmup_cosine(total_steps=n, warmup=2),
            callbacks=[guard, worker.Losses()],
        )  # fmt: skip
        history = t.fit(worker.mlp_data())
        return t, guard, history

    plain, g_plain, h_plain = run(False)
    sharded, g_sharded, h_sharded = run("fsdp")
    assert g_plain.retries > 0 and g_sharded.retries == g_plain.retries  # it did roll back
    assert [e["kind"] for e in h_sharded.events] == [e["kind"] for e in h_plain.events]
    assert sharded.callbacks[1].values == pytest.approx(plain.callbacks[1].values, rel=1e-5)
    assert sharded.optimizer.param_groups[0]["lr"] == pytest.approx(
        plain.optimizer.param_groups[0]["lr"], rel=1e-12
    )
    full = worker.full_state(sharded.model)
    for k, v in plain.model.state_dict().items():
        torch.testing.assert_close(full[k], v, rtol=1e-5, atol=1e-6)
