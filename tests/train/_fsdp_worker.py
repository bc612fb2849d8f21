"""One rank of the FSDP tests: ``python _fsdp_worker.py SCENARIO OUT_DIR``.

The test starts it in 2 processes with the variables ``torchrun`` sets. The
builders are shared with the test, which runs the single-process references
(same data, same initial weights, the global batch in one process).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from gradwise.optim import adamw
from gradwise.train import (
    FSDP,
    Callback,
    Checkpoint,
    MetricsLogger,
    Trainer,
    process_rank,
    world_size,
)

N, D, K = 64, 6, 3  # 64 = 2 ranks × 32
V, T = 48, 8  # tiny Llama: vocabulary, sequence length


class Losses(Callback):
    """The loss of every optimizer step (the mean over ranks under FSDP)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_step_end(self, state):
        self.values.append(float(state.loss))


def mlp_data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g)
    return X, (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()


def mlp_trainer(batch_size: int, distributed, optimizer: str = "sgd", **kw) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(D, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, K)
    )
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = adamw(model.named_parameters(), lr=1e-2, weight_decay=0.1)
    return Trainer(
        model, opt, nn.CrossEntropyLoss(), epochs=3, batch_size=batch_size, seed=3,
        distributed=distributed, callbacks=[Losses()], **kw,
    )  # fmt: skip


class CausalLM(nn.Module):
    """A tiny random ``LlamaForCausalLM`` whose forward returns the logits."""

    def __init__(self, lora: bool = False) -> None:
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(
            vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
            tie_word_embeddings=False,
        )  # fmt: skip
        self.lm = LlamaForCausalLM(cfg)
        if lora:
            from gradwise.lora import LoRAConfig, inject

            inject(self.lm, LoRAConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))

    def forward(self, ids):
        return self.lm(input_ids=ids).logits  # (B, T, V)


def lm_loss(logits, target):
    return F.cross_entropy(logits.reshape(-1, V).float(), target.reshape(-1))


def lm_data(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (16, T + 1), generator=g)
    return ids[:, :-1], ids[:, 1:]


def llama_trainer(batch_size: int, distributed, lora: bool = False, **kw) -> Trainer:
    torch.manual_seed(0)
    model = CausalLM(lora)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)
    return Trainer(
        model, opt, lm_loss, epochs=2, batch_size=batch_size, seed=4,
        distributed=distributed, callbacks=[Losses()], **kw,
    )  # fmt: skip


def guarded_trainer(batch_size: int, distributed) -> Trainer:
    """SGD at lr 30 diverges: the DivergenceGuard rolls back and lowers the lr."""
    from gradwise.optim import sgd
    from gradwise.train import DivergenceGuard

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.Tanh(), nn.Linear(16, K))
    return Trainer(
        model, sgd(model.named_parameters(), lr=30.0), nn.CrossEntropyLoss(), epochs=4,
        batch_size=batch_size, seed=0, distributed=distributed,
        callbacks=[Losses(), DivergenceGuard(snapshot_every=2, max_retries=5)],
    )  # fmt: skip


def losses(trainer: Trainer) -> list[float]:
    """The step losses the trainer's ``Losses`` callback recorded."""
    return next(cb for cb in trainer.callbacks if isinstance(cb, Losses)).values


def full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict with every sharded tensor gathered (a collective call)."""
    out = {}
    for k, v in model.state_dict().items():
        out[k] = v.full_tensor() if hasattr(v, "full_tensor") else v
    return {k: v.detach().clone() for k, v in out.items()}


def record(out: Path, name: str, trainer: Trainer) -> None:
    state = full_state(trainer.model)
    grads = sum(p.requires_grad for p in trainer.model.parameters())
    if process_rank() == 0:
        torch.save(
            {
                "losses": losses(trainer),
                "state": state,
                "trainable": grads,
                "world": world_size(),
                "events": [(e["kind"], e["step"]) for e in trainer.history.events],
            },
            out / f"{name}.pt",
        )


class Kill(Callback):
    """SIGKILL this process (rank ``rank``) at the end of step ``at``: no cleanup, no flush."""

    order = 200  # after Checkpoint

    def __init__(self, at: int, rank: int = 1) -> None:
        self.at, self.rank = at, rank

    def on_step_end(self, state):
        if state.step == self.at and process_rank() == self.rank:
            os.kill(os.getpid(), signal.SIGKILL)


class Crash(Callback):
    order = 200

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, state):
        if state.step == self.at:
            raise RuntimeError("simulated crash")


def resumable_trainer(
    log_dir: Path | None, distributed, batch_size: int = 4, kill_at=None, crash_at=None, lora=False
):
    """gradwise AdamW, a StepLR schedule, grad_accum=2, DCP checkpoints every 3 steps.

    32 examples per rank in batches of 4: 8 batches, 4 steps per epoch, 12 in all.
    """
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, K)
    )
    if lora:
        from gradwise.lora import LoRAConfig, inject

        inject(model, LoRAConfig(r=2, alpha=4, target_modules=["0", "2"]))
    opt = adamw(
        [(n, p) for n, p in model.named_parameters() if p.requires_grad], lr=1e-2, weight_decay=0.05
    )
    callbacks: list = [Losses()]
    if log_dir is not None:
        callbacks += [
            MetricsLogger(log_dir, log_every=1, tensorboard=False),
            Checkpoint(log_dir / "ckpt", every_n_steps=3, keep=10),
        ]
    if kill_at is not None:
        callbacks.append(Kill(kill_at))
    if crash_at is not None:
        callbacks.append(Crash(crash_at))
    return Trainer(
        model, opt, nn.CrossEntropyLoss(), epochs=3, batch_size=batch_size, grad_accum=2,
        seed=5, distributed=distributed, callbacks=callbacks,
        scheduler=torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5),
    )  # fmt: skip


def lr_find_batches(rank: int | None, batch: int = 8, seed: int = 6):
    """The range test's batches: rank r's half of each global batch, or (None) the whole of it."""
    X, y = mlp_data()
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(3):
        order = torch.randperm(N, generator=g)
        for i in range(0, N, 2 * batch):
            idx = order[i : i + 2 * batch]
            if rank is not None:
                idx = idx[rank * batch : (rank + 1) * batch]
            out.append((X[idx], y[idx]))
    return out


def lr_find_case(rank: int | None, optimizer: str):
    """An MLP and its optimizer for the range test; sharded when ``rank`` is given."""
    from gradwise.optim import sgd
    from gradwise.train._fsdp import shard

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(D, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, K)
    )
    if optimizer == "sgd":
        opt = sgd(model.named_parameters(), lr=0.1, momentum=0.9)
    else:
        opt = adamw(model.named_parameters(), lr=1e-2, weight_decay=0.1)
    if rank is not None:
        import torch.distributed as dist

        if not dist.is_initialized():  # torchrun's variables are set
            dist.init_process_group("gloo")
        shard(model, opt, FSDP(), torch.device("cpu"))
    return model, opt


def run_lr_find(rank: int | None, optimizer: str):
    from gradwise.schedules import lr_find

    model, opt = lr_find_case(rank, optimizer)
    found = lr_find(model, nn.CrossEntropyLoss(), lr_find_batches(rank), opt, min_lr=1e-4,
                    max_lr=50.0, num_steps=40)  # fmt: skip
    return found, model


def main(scenario: str, out: Path) -> None:
    torch.set_num_threads(1)
    if scenario == "match":
        t = mlp_trainer(16, "fsdp")
        t.fit(mlp_data())
        record(out, "mlp_sgd", t)
        t = mlp_trainer(8, "fsdp", optimizer="adamw", grad_accum=2, clip_grad_norm=0.5)
        t.fit(mlp_data())
        record(out, "mlp_adamw", t)
        t = llama_trainer(4, "fsdp")
        t.fit(lm_data())
        record(out, "llama", t)
        t = llama_trainer(4, FSDP(activation_checkpointing=True), lora=True)
        t.fit(lm_data())
        record(out, "llama_lora", t)
        t = llama_trainer(4, FSDP(mixed_precision="bf16"))
        t.fit(lm_data())
        record(out, "llama_bf16", t)
        t = guarded_trainer(4, "fsdp")
        t.fit(mlp_data())
        record(out, "guard", t)
    elif scenario == "lr_find":
        for optimizer in ("sgd", "adamw"):
            found, model = run_lr_find(process_rank(), optimizer)
            state = full_state(model)
            if process_rank() == 0:
                torch.save({"result": vars(found), "state": state}, out / f"lr_find_{optimizer}.pt")
    elif scenario == "multinode":  # under torchrun --nnodes=2 --nproc_per_node=1
        t = mlp_trainer(16, "fsdp")
        t.fit(mlp_data())
        record(out, "multinode", t)
    elif scenario == "kill":
        resumable_trainer(out / "run", "fsdp", kill_at=7).fit(mlp_data())
        raise SystemExit("rank 1 was not killed")  # rank 0 fails in a collective before this
    elif scenario == "resume":
        t = resumable_trainer(out / "run", "fsdp")
        t.fit(mlp_data(), resume=out / "run" / "ckpt")
        record(out, "resumed", t)
        t = resumable_trainer(out / "full", "fsdp")
        t.fit(mlp_data())
        record(out, "full", t)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    _leave_together()


def _leave_together() -> None:
    # Every rank has written its records: meet once more, close the group, and
    # exit without C++ teardown. A rank whose peer closed the gloo sockets
    # first can otherwise abort at interpreter exit ("terminate called without
    # an active exception") after all of its work is done.
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
