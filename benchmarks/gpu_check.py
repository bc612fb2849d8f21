"""One short check of the FSDP path on a CUDA GPU (world size 1, NCCL, bf16 mixed precision).

A tiny random Llama trains for 12 steps under ``Trainer(distributed=FSDP("bf16",
activation_checkpointing=True))`` with DCP checkpoints every 3 steps; a second
run resumes from the step-6 checkpoint. Printed checks: NCCL is the backend,
the parameters are DTensors in float32 (bf16 only in the compute), every loss
is finite, the loss falls, and the resumed run ends where the uninterrupted
one does. Exits 0 at once, with a message, where CUDA is absent; 1 if a check
fails. Takes well under 3 minutes.

    python benchmarks/gpu_check.py
"""

from __future__ import annotations

import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here; nothing to check (run it on a GPU machine)")
        return 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # torchrun's variables for a world of one process
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))  # fmt: skip
    from torch import nn
    from torch.nn import functional as F
    from transformers import LlamaConfig, LlamaForCausalLM

    from gradwise.optim import adamw
    from gradwise.train import FSDP, Callback, Checkpoint, Trainer

    V, T = 256, 32

    class LM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            cfg = LlamaConfig(vocab_size=V, hidden_size=128, intermediate_size=256,
                              num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                              max_position_embeddings=64)  # fmt: skip
            self.lm = LlamaForCausalLM(cfg)

        def forward(self, ids):
            return self.lm(input_ids=ids).logits

    def loss_fn(logits, target):
        return F.cross_entropy(logits.reshape(-1, V).float(), target.reshape(-1))

    class Losses(Callback):
        def __init__(self) -> None:
            self.values: list[float] = []

        def on_step_end(self, state):
            self.values.append(float(state.loss))

    g = torch.Generator().manual_seed(0)
    # Each row counts up from a random start (mod V): learnable in a few steps,
    # so a falling loss says the sharded update works, not only that it runs.
    ids = (torch.randint(0, V, (32, 1), generator=g) + torch.arange(T + 1)) % V
    data = (ids[:, :-1], ids[:, 1:])

    def trainer(ckpt: Path) -> Trainer:
        torch.manual_seed(0)
        model = LM()
        return Trainer(
            model, adamw(model.named_parameters(), lr=3e-3, weight_decay=0.0), loss_fn,
            epochs=3, batch_size=8, seed=0, device="cuda",
            distributed=FSDP("bf16", activation_checkpointing=True),
            callbacks=[Losses(), Checkpoint(ckpt, every_n_steps=3, keep=10)],
        )  # fmt: skip

    checks: list[tuple[str, bool, str]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        full = trainer(Path(tmp) / "a")
        full.fit(data)
        import torch.distributed as dist

        p = next(full.model.parameters())
        checks.append(("backend is nccl", dist.get_backend() == "nccl", dist.get_backend()))
        checks.append(
            ("parameters are fp32 DTensors on cuda",
             type(p).__name__ == "DTensor" and p.dtype == torch.float32 and p.is_cuda,
             f"{type(p).__name__} {p.dtype} {p.device}")
        )  # fmt: skip
        losses = full.callbacks[0].values
        checks.append(("12 steps, every loss finite", len(losses) == 12
                       and all(math.isfinite(v) for v in losses), f"{len(losses)} steps"))  # fmt: skip
        checks.append(("loss decreases", losses[-1] < 0.9 * losses[0],
                       f"{losses[0]:.4f} -> {losses[-1]:.4f}"))  # fmt: skip
        resumed = trainer(Path(tmp) / "a")
        resumed.fit(data, resume=Path(tmp) / "a" / "step-00000006")
        rl = resumed.callbacks[0].values
        diff = max(abs(a - b) for a, b in zip(rl, losses[6:], strict=True))
        checks.append(("DCP resume from step 6: same losses", diff <= 1e-3 * abs(losses[-1]),
                       f"max |diff| {diff:.2e}"))  # fmt: skip
        wa = {k: v.full_tensor() for k, v in full.model.state_dict().items()}
        wb = {k: v.full_tensor() for k, v in resumed.model.state_dict().items()}
        wdiff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
        checks.append(("DCP resume: same final weights", wdiff <= 1e-3, f"max |diff| {wdiff:.2e}"))
    mem = torch.cuda.max_memory_allocated() / 2**20
    print(f"gpu: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"peak allocated {mem:.0f} MiB, {time.perf_counter() - t0:.1f} s")  # fmt: skip
    print("losses:", " ".join(f"{v:.4f}" for v in losses))
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}  ({detail})")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
