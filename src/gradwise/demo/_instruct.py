"""Demo section "instruct": instruction tuning a tiny causal LM with LoRA.

1. Pretrain a tiny Llama-style base model on sentences that state the facts
   of ten small tasks over a closed world of made-up words and small numbers
   ("BAKO backwards is OKAB.", "7 plus 9 is 16.").
2. Draw instructions for the same tasks ("Reverse the word: BAKO"), holding
   out 20 items per task whose instruction is never trained.
3. Measure held-out exact match of the base model (it knows the facts but
   has never seen an instruction, so it does not answer and stop),
   instruction-tune it with LoRA, and measure again: the format learned on
   some facts carries over to the held-out ones.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from gradwise._optional import require
from gradwise.demo._registry import register

PLANS: dict[str, dict[str, Any]] = {
    # the full lesson: about 2 minutes of pretraining and 3 of tuning on 2 cores
    "full": {
        "base": {"hidden": 128, "layers": 4, "heads": 4, "documents": 20_000, "steps": 500},
        "n_train": 100,
        "n_test": 20,
        "epochs": 20,
        "batch_size": 16,
        "lr": 3e-3,
        "r": 16,
    },
    # the tour's version: the same steps, smaller
    "quick": {
        "base": {"hidden": 64, "layers": 2, "heads": 2, "documents": 4_000, "steps": 150},
        "n_train": 40,
        "n_test": 5,
        "epochs": 2,
        "batch_size": 16,
        "lr": 3e-3,
        "r": 8,
    },
}


def run_demo(
    out_dir: Path, plan: dict[str, Any], *, device: str = "cpu", verbose: bool = True
) -> dict[str, Any]:
    """Pretrain, measure, tune, measure; returns the headline numbers."""
    from gradwise.instruct import init_base, instruction_set, task_of, write_jsonl
    from gradwise.instruct._config import InstructConfig
    from gradwise.recipes.instruct import sft

    say = print if verbose else (lambda *a, **k: None)
    out_dir = Path(out_dir)

    # 1. the base model: tokenizer + pretraining on task facts
    start = time.perf_counter()
    base_dir = out_dir / "base"
    info = init_base(base_dir, device=device, **plan["base"])
    t_base = time.perf_counter() - start
    say(
        f"   base model: {info.n_parameters:,} parameters, {info.steps} pretraining steps, "
        f"loss {info.losses[0]:.2f} -> {info.losses[-1]:.2f} in {t_base:.0f} s"
    )

    # 2. instruction data: ten task types, held-out prompts per task
    train, test = instruction_set(plan["n_train"], plan["n_test"], seed=0)
    write_jsonl(train, out_dir / "data" / "train.jsonl")
    write_jsonl(test, out_dir / "data" / "test.jsonl")

    # 3. LoRA instruction tuning with before/after evaluation
    cfg = InstructConfig.model_validate(
        {
            "name": out_dir.name,
            "runs_dir": str(out_dir.parent),
            "model": {"path": str(base_dir)},
            "data": {
                "train": str(out_dir / "data" / "train.jsonl"),
                "val": str(out_dir / "data" / "test.jsonl"),
                "template": "chatml",
                "max_length": 128,
                "packing": True,
            },
            "lora": {"r": plan["r"], "alpha": 2 * plan["r"], "target_modules": "all-linear"},
            "optimizer": {"lr": plan["lr"], "warmup": 0.05},
            "training": {
                "epochs": plan["epochs"],
                "batch_size": plan["batch_size"],
                "device": device,
                "seed": 0,
                "progress": verbose,
                "checkpoint": False,
            },
            "eval": {"max_examples": None, "max_new_tokens": 16, "batch_size": 64},
            "save": "adapter",
        }
    )
    start = time.perf_counter()
    result = sft(cfg, progress=verbose)
    t_tune = time.perf_counter() - start
    before, after = result.results["before"], result.results["after"]

    per_task: dict[str, list[bool]] = defaultdict(list)
    for ex, g in zip(test, result.generations):
        per_task[task_of(ex)].append(g["prediction"].strip() == g["reference"].strip())
    say(
        f"   held-out exact match: before {before['exact_match']:.1%} -> after {after['exact_match']:.1%}"
    )
    say(
        "   per task after: "
        + ", ".join(f"{k} {sum(v) / len(v):.0%}" for k, v in sorted(per_task.items()))
    )
    for g in result.generations[:: max(1, len(result.generations) // 6)][:6]:
        say(f"   {g['prompt']!r} -> {g['prediction']!r} (reference {g['reference']!r})")
    return {
        "exact_match_before": before["exact_match"],
        "exact_match_after": after["exact_match"],
        "token_accuracy_before": before["token_accuracy"],
        "token_accuracy_after": after["token_accuracy"],
        "pretrain_seconds": round(t_base, 1),
        "tune_seconds": round(t_tune, 1),
        "report": str(result.run_dir / "report.html"),
    }


@register("instruct", "Instruction tuning a tiny causal LM with LoRA", order=80)
def demo(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    require("transformers", "demo", "the instruct demo")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight loading/saving bars of a tiny model are noise
    try:
        return run_demo(out_dir, PLANS["quick" if quick else "full"])
    finally:
        hf_logging.enable_progress_bar()
