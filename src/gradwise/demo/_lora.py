"""Demo section "lora": LoRA r=8 vs a full fine-tune of pretrained MiniLM on the shipped sentences."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from gradwise.demo._finetune import _bars, _write_page, minilm_dir
from gradwise.demo._registry import register

# the classic LoRA targets: the query and value projections of every attention layer
TARGETS = ["query", "value"]


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the tensors of ``optimizer.state`` (AdamW: two moments per trained tensor).

    >>> net = torch.nn.Linear(4, 2)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    >>> net(torch.ones(1, 4)).sum().backward(); opt.step()
    >>> optimizer_state_bytes(opt)  # one float32 momentum buffer per tensor: (8 + 2) * 4
    40
    """
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
    return total


def _settings(quick: bool) -> dict[str, Any]:
    # LoRA's adapters start at B = 0 and learn from scratch: they take a 30x
    # larger rate than the pretrained weights. Quick: 160 of the training
    # rows and 16 tokens; with 64 rows and 2 epochs both runs stayed at chance.
    rates = {"lora_lr": 3e-3, "full_lr": 1e-4, "epochs": 5, "batch_size": 16}
    if quick:
        return {"max_train": 160, "max_length": 16, **rates}
    return {"max_train": None, "max_length": 32, **rates}


def state_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """Bytes of the tensors of a state dict (a safetensors file's payload, less its header)."""
    return sum(t.numel() * t.element_size() for t in tensors.values())


def speed_text(lora_seconds: float, full_seconds: float) -> str:
    """The report's sentence on seconds per epoch, LoRA against the full fine-tune, as measured.

    Either way it says why LoRA is not faster by the ratio of its trainable
    parameters: the forward pass runs through every frozen layer, and the
    backward pass carries the gradient down through them to the lowest
    adapter; LoRA saves only the frozen matrices' weight gradients and their
    optimizer update.

    >>> speed_text(4.0, 8.0).startswith("Per epoch LoRA took 4.0 s against 8.0 s")
    True
    >>> "2.0x faster" in speed_text(4.0, 8.0), "not much faster" in speed_text(7.5, 8.0)
    (True, True)
    """
    head = (
        f"Per epoch LoRA took {lora_seconds:.1f} s against {full_seconds:.1f} s (wall time, "
        "so also whatever else the machine ran)."
    )
    why = (
        "the forward pass runs through every frozen layer, and so does the backward pass, which "
        "must carry the gradient down to the lowest adapter; only the weight gradients of the "
        "frozen matrices and their optimizer update are saved"
    )
    if lora_seconds > 0 and full_seconds / lora_seconds >= 1.25:
        return (
            f"{head} LoRA was {full_seconds / lora_seconds:.1f}x faster per epoch here, far "
            f"from the ratio of trainable parameters: {why} (a full fine-tune's AdamW step "
            "updates all 22.6 M weights, the 11.7 M of the token-embedding table among them)."
        )
    return f"{head} On a CPU LoRA is not much faster per epoch: {why}."


def _data(tokenizer: Any, s: dict[str, Any]) -> dict[str, tuple[torch.Tensor, ...]]:
    from gradwise.finetune._config import FinetuneDataConfig
    from gradwise.recipes.finetune import as_tensors, load_parts

    cfg = FinetuneDataConfig(
        name="sentences", val=0.15, test=0.25, seed=s.get("seed", 0), max_train=s["max_train"]
    )
    parts = load_parts(cfg, text=True)
    return {
        name: as_tensors(part, tokenizer, s["max_length"])
        for name, part in zip(("train", "val", "test"), parts, strict=True)
    }


def _fit(label: str, lora: bool, s: dict[str, Any], out_dir: Path | None = None) -> dict[str, Any]:
    """Fine-tune a fresh copy of MiniLM with LoRA adapters (``lora``) or every weight."""
    from gradwise import nn as gnn
    from gradwise._steps import fit_progress
    from gradwise.finetune import TextClassifier, load_hf_encoder
    from gradwise.lora import LoRAConfig, inject, save_adapter, trainable_parameters
    from gradwise.optim import adamw
    from gradwise.train import Trainer

    encoder, tokenizer = load_hf_encoder(minilm_dir("lora"))
    data = _data(tokenizer, s)
    head = gnn.head("binary", 1)
    torch.manual_seed(s.get("seed", 0))
    model = TextClassifier(encoder, head.out_features, "mean", dropout=0.1)
    if lora:
        # the fresh head trains fully (modules_to_save); the encoder's weights stay frozen
        inject(model, LoRAConfig(r=8, alpha=16, target_modules=TARGETS, modules_to_save=["head"]))
        body_lr = s["lora_lr"]
    else:
        body_lr = s["full_lr"]
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    # the fresh head learns at a higher rate than the pretrained weights in both runs
    groups = [
        {"params": [(n, p) for n, p in named if "head" not in n], "lr": body_lr},
        {"params": [(n, p) for n, p in named if "head" in n], "lr": 3e-3},
    ]
    optimizer = adamw(groups, lr=body_lr, weight_decay=1e-2)
    count = trainable_parameters(model, verbose=False)
    trainer = Trainer(
        model, optimizer, head, epochs=s["epochs"], batch_size=s["batch_size"], seed=s.get("seed", 0),
        device="cpu", callbacks=[fit_progress(f"lora: {label}")],
    )  # fmt: skip
    start = time.perf_counter()
    history = trainer.fit(data["train"], data["val"])
    seconds = time.perf_counter() - start
    scores = trainer.evaluate({"train": data["train"], "test": data["test"]})
    if lora and out_dir is not None:
        saved = save_adapter(model, Path(out_dir) / "adapter")
        file_bytes = (saved / "adapter_model.safetensors").stat().st_size
    else:  # what a checkpoint of every weight holds
        file_bytes = state_bytes(model.state_dict())
    return {
        "method": label,
        "trainable parameters": count.trainable,
        "total parameters": count.total,
        "trainable fraction": count.fraction,
        "optimizer state bytes": optimizer_state_bytes(optimizer),
        "weights file bytes": file_bytes,
        "test accuracy": scores["test"]["accuracy"],
        "train accuracy": scores["train"]["accuracy"],
        "seconds per epoch": seconds / len(history),
        "_val": history.series("val_accuracy"),
    }


@register("lora", "LoRA r=8 vs full fine-tune on pretrained MiniLM", order=65)
def demo(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    from gradwise.report import Section, plot_curves

    out_dir = Path(out_dir)
    s = _settings(quick)
    rows = [_fit("full fine-tune", False, s), _fit("LoRA r=8 (query, value)", True, s, out_dir)]
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    full, lora = rows
    curves = {r["method"]: (list(range(1, len(r["_val"]) + 1)), r["_val"]) for r in rows}
    curve_png = plot_curves(
        curves, out_dir / "plots" / "lora_val_accuracy.png", title="validation accuracy",
        ylabel="accuracy",
    )  # fmt: skip
    bars_png = _bars(
        out_dir / "plots" / "lora.png", [r["method"] for r in rows],
        {"test accuracy": [r["test accuracy"] for r in rows]}, "accuracy",
    )  # fmt: skip
    table = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    state_ratio = lora["optimizer state bytes"] / full["optimizer state bytes"]
    text = (
        f"all-MiniLM-L6-v2 classifies the shipped review sentences twice: every weight trained, "
        f"or the weights frozen and rank-8 adapters W + (alpha/r)·B·A added to the query and value "
        f"projections of its {len(TARGETS) * 6} attention matrices (the new head trains in both). "
        f"LoRA trains {lora['trainable fraction']:.2%} of the parameters; AdamW keeps two moments "
        f"per trained weight, so its state shrinks to {state_ratio:.2%} of the full fine-tune's. "
        f"Seconds per epoch include the validation pass; {s['epochs']} epochs, max_length "
        f"{s['max_length']}. Chance is 0.5. "
        f"{speed_text(lora['seconds per epoch'], full['seconds per epoch'])} "
        "What LoRA does save: trainable parameters "
        f"({full['trainable parameters']:,} to {lora['trainable parameters']:,}), optimizer "
        f"state ({full['optimizer state bytes'] / 2**20:.1f} MiB to "
        f"{lora['optimizer state bytes'] / 2**20:.2f} MiB) and the file to keep per task: the "
        f"adapter's safetensors file is {lora['weights file bytes'] / 2**10:.0f} KiB against "
        f"{full['weights file bytes'] / 2**20:.1f} MiB for every weight."
    )
    report = _write_page(
        out_dir, "gradwise demo: LoRA vs full fine-tune",
        [Section("LoRA on MiniLM", text=text, tables=[("", table)], images=[bars_png, curve_png])],
    )  # fmt: skip
    return {
        "lora_trainable": lora["trainable parameters"],
        "full_trainable": full["trainable parameters"],
        "lora_trainable_fraction": lora["trainable fraction"],
        "lora_state_bytes": lora["optimizer state bytes"],
        "full_state_bytes": full["optimizer state bytes"],
        "state_ratio": state_ratio,
        "lora_file_bytes": lora["weights file bytes"],
        "full_file_bytes": full["weights file bytes"],
        "lora_accuracy": lora["test accuracy"],
        "full_accuracy": full["test accuracy"],
        "lora_epoch_seconds": round(lora["seconds per epoch"], 2),
        "full_epoch_seconds": round(full["seconds per epoch"], 2),
        "report": str(report),
    }
