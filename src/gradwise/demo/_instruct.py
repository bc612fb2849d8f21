"""Demo section "instruct": instruction tuning a tiny causal LM with LoRA.

1. Pretrain a tiny Llama-style base model on sentences that state the facts
   of small tasks over a closed world of made-up words and small numbers
   ("BAKO backwards is OKAB.", "7 plus 9 is 16."). The model is built once
   per recipe and reused from the cache (:func:`gradwise.instruct.cached_base`).
2. Draw instructions for the same tasks ("Reverse the word: BAKO") in three
   disjoint splits per task: train; val, whose loss the divergence guard
   watches and whose best epoch the run ends on; and held-out test items,
   never trained and never used to choose the epoch.
3. Measure test exact match of the base model (it knows the facts but
   has never seen an instruction, so it does not answer and stop),
   instruction-tune it with LoRA, and measure again: the format learned on
   some facts carries over to the held-out ones.

The full section's lesson: test exact match 0% before, about 66% after
(LoRA). The quick one (three tasks, a 121 k-parameter base, every weight
tuned with weight decay 2.0): 0% before, 90-100% after on seeds 0-4.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from gradwise._optional import require
from gradwise.demo._registry import register

PLANS: dict[str, dict[str, Any]] = {
    # the full lesson: all ten tasks; about 2 minutes of pretraining (once per
    # recipe, then loaded from the cache) and 2 of tuning on 2 idle cores
    "full": {
        "tasks": None,
        "base": {
            "hidden": 128,
            "layers": 4,
            "heads": 4,
            "vocab_size": 384,
            "max_length": 128,
            "documents": 20_000,
            "steps": 500,
            "batch_size": 32,
            "lr": 3e-3,
            "seed": 0,
        },
        "n_train": 100,
        "n_val": 10,
        "n_test": 20,
        "epochs": 20,
        "batch_size": 16,
        "lr": 3e-3,
        "r": 16,
        "max_new_tokens": 16,
    },
    # the tour's version: a smaller base (121 k parameters, 12 s of pretraining on 2
    # cores, cached) and three tasks; test exact match 0% -> 90-100% on seeds 0-4.
    # Fully fine-tuned (r=0): LoRA of any rank up to 64 does not learn to copy a
    # letter on this base, while training every weight, the tied embedding
    # included, does. Weight decay 2.0 makes it copy rather than memorize the 80
    # training words, on every seed by epoch ~17 (docs/instruct.md, "Why the quick
    # tuning needs weight decay")
    "quick": {
        "tasks": ["first", "last", "count"],
        "base": {
            "hidden": 64,
            "layers": 2,
            "heads": 2,
            "vocab_size": 320,
            "max_length": 64,
            "documents": 3_000,
            "steps": 300,
            "batch_size": 32,
            "lr": 1e-2,
            "seed": 0,
            "tasks": ["first", "last", "count", "spell", "larger", "next"],
        },
        "n_train": 80,
        "n_val": 10,
        "n_test": 10,
        "epochs": 40,
        "batch_size": 32,
        "packing": False,
        "lr": 3e-3,
        "weight_decay": 2.0,
        # no divergence guard: its trend rule, watching the loss of 30 validation
        # instructions, which jumps about while the model leaves the plateau, rolled back
        # and halved the lr right there on seed 2 (0.37 with it, 1.00 without)
        "guard": False,
        "schedule": {"name": "constant"},
        "r": 0,
        "max_new_tokens": 8,
    },
}


def run_demo(
    out_dir: Path,
    plan: dict[str, Any],
    *,
    seed: int = 0,
    cache: str | Path | None = None,
    device: str = "cpu",
    verbose: bool = True,
) -> dict[str, Any]:
    """Build (or reuse) the base, measure, tune, measure; returns the headline numbers.

    ``seed`` draws the train/val/test splits, the LoRA adapters' initial
    weights and the order of the batches. The base model is the plan's
    (``plan["base"]``, its own ``seed`` included): a fixed pretrained model,
    built once and then loaded from the cache. ``cache`` is the base-model
    cache root (default: the user's).
    """
    from gradwise.instruct import cached_base, instruction_splits, task_of, write_jsonl
    from gradwise.instruct._config import InstructConfig
    from gradwise.recipes.instruct import sft

    say = print if verbose else (lambda *a, **k: None)
    out_dir = Path(out_dir)
    tasks = plan.get("tasks")  # None: all ten tasks

    # 1. the base model: tokenizer + pretraining on task facts, once per recipe
    start = time.perf_counter()
    base = {"tasks": tasks, **plan["base"]}  # the base's corpus may hold more tasks
    info = cached_base(cache=cache, device=device, progress=verbose, **base)
    t_base = time.perf_counter() - start
    how = (
        f"reused from the cache ({info.path}; built in {info.seconds:.0f} s)"
        if info.cached
        else f"pretrained in {t_base:.0f} s, cached at {info.path}"
    )
    say(
        f"   base model: {info.n_parameters:,} parameters, {info.steps} pretraining steps, "
        f"loss {info.losses[0]:.2f} -> {info.losses[-1]:.2f}; {how}"
    )

    # 2. instruction data, three disjoint splits per task: train; val, whose loss the
    #    divergence guard (when the plan has it) watches and whose best epoch the run ends
    #    on; and the held-out test items, measured before and after, never trained and
    #    never used to choose (a plan without ``n_val`` has no val split: the guard then
    #    watches the training loss)
    train, val, test = instruction_splits(
        plan["n_train"], plan.get("n_val", 0), plan["n_test"], tasks=tasks, seed=seed
    )
    data = {"train": train, "val": val, "test": test} if val else {"train": train, "test": test}
    for split, examples in data.items():
        write_jsonl(examples, out_dir / "data" / f"{split}.jsonl")

    # 3. instruction tuning (LoRA, or every weight when r is 0) with before/after evaluation
    cfg = InstructConfig.model_validate(
        {
            "name": out_dir.name,
            "runs_dir": str(out_dir.parent),
            "model": {"path": str(info.path)},
            "data": {
                **{split: str(out_dir / "data" / f"{split}.jsonl") for split in data},
                "template": plan.get("template", "chatml"),
                "max_length": 128,
                "packing": plan.get("packing", True),
            },
            "lora": (
                {"r": plan["r"], "alpha": 2 * plan["r"], "target_modules": "all-linear"}
                if plan["r"]
                else None
            ),
            "optimizer": {
                "name": "adamw",
                "lr": plan["lr"],
                "weight_decay": plan.get("weight_decay", 0.0),
            },
            "schedule": plan.get("schedule", {"name": "warmup_cosine", "warmup": 0.05}),
            "training": {
                "epochs": plan["epochs"],
                "batch_size": plan["batch_size"],
                "device": device,
                "seed": seed,
                "progress": verbose,
                "checkpoint": False,
                "guard": plan.get("guard", True),
            },
            "eval": {
                "max_examples": None,
                "max_new_tokens": plan["max_new_tokens"],
                "batch_size": 64,
            },
            "save": "adapter" if plan["r"] else "merged",
        }
    )
    how = f"LoRA r={plan['r']}" if plan["r"] else "every weight (full fine-tuning)"
    say(
        f"   tuning {how} on {len(train)} instructions, {plan['epochs']} epochs "
        + (
            "(guard on the training loss)"
            if not val
            else f"(guard and best epoch on {len(val)} validation instructions)"
            if plan.get("guard", True)
            else f"(validation loss on {len(val)} instructions)"
        )
    )
    start = time.perf_counter()
    result = sft(cfg, progress=verbose)
    t_tune = time.perf_counter() - start
    before, after = result.results["before"], result.results["after"]

    per_task: dict[str, list[bool]] = defaultdict(list)
    for ex, g in zip(test, result.generations):
        per_task[task_of(ex)].append(g["prediction"].strip() == g["reference"].strip())
    say(
        f"   held-out exact match ({len(test)} instructions never trained): "
        f"before {before['exact_match']:.1%} -> after {after['exact_match']:.1%}"
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
        "per_task_after": {k: sum(v) / len(v) for k, v in sorted(per_task.items())},
        "base_cached": info.cached,
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
