"""What each section's claims read: the section's quick version run with one seed.

Each function is ``measure(seed, work_dir) -> {name: value}``; it calls the
section's own code (its function with a ``seed``, or the configs it runs with
their seeds replaced), so a claim follows the section when the section
changes. Files go under ``work_dir``. :mod:`gradwise.demo._claims` turns the
values into margins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _seeded(raw: dict[str, Any], seed: int) -> dict[str, Any]:
    """A fine-tuning config with its data split and training seed set to ``seed``."""
    return {**raw, "data": {**raw["data"], "seed": seed},
            "training": {**raw["training"], "seed": seed}}  # fmt: skip


def train(seed: int, work_dir: Path) -> dict[str, float]:
    from gradwise.demo._train import train_digits

    r = train_digits(work_dir / "demo-train", quick=True, seed=seed)
    return {"test_accuracy": float(r["test_accuracy"])}


def lr(seed: int, work_dir: Path) -> dict[str, float]:
    from gradwise.demo._lr import guard_claim

    r = guard_claim(seed)
    return {k: float(r[k]) for k in ("suggested", "guarded", "unguarded", "rescues")}


def linear(seed: int, work_dir: Path) -> dict[str, float]:
    from gradwise.demo._linear import regularization_for_regression

    r = regularization_for_regression(work_dir / "demo-linear", quick=True, seed=seed)
    out = {f"{k}_nonzero": float(str(r[f"{k}_nonzero"]).split("/")[0])
           for k in ("lasso", "elastic_net", "ridge")}  # fmt: skip
    out.update({k: float(r[k]) for k in ("lasso_recall", "lasso_precision")})
    return out


def finetune(seed: int, work_dir: Path) -> dict[str, float]:
    """The digits transfer section's full, head-only and gradual fine-tunes (quick)."""
    from gradwise.config import parse_config
    from gradwise.demo._finetune import digits_configs, pretrain_digits_cnn
    from gradwise.finetune._config import FinetuneConfig
    from gradwise.recipes.finetune import run

    out_dir = work_dir / "demo-finetune"
    ckpt = pretrain_digits_cnn(out_dir, epochs=6, seed=seed)
    configs = digits_configs(ckpt, out_dir, quick=True)
    out: dict[str, float] = {}
    for key, label in (("full", "full"), ("head", "head-only"), ("gradual", "gradual+discr")):
        res = run(parse_config(_seeded(configs[label], seed), FinetuneConfig), progress=False)
        out[f"{key}_accuracy"] = float(res.results["test"]["accuracy"])
        out[f"{key}_change"] = float(res.forgetting["change"]) if res.forgetting else float("nan")
    return out


def minilm(seed: int, work_dir: Path) -> dict[str, float]:
    """The minilm section's head-only and gradual fine-tunes (quick)."""
    from gradwise.config import parse_config
    from gradwise.demo._finetune import minilm_configs
    from gradwise.finetune._config import FinetuneConfig
    from gradwise.recipes.finetune import run

    configs = minilm_configs(work_dir / "demo-minilm", quick=True)
    out: dict[str, float] = {}
    for key, label in (("head", "head-only"), ("gradual", "gradual")):
        res = run(parse_config(_seeded(configs[label], seed), FinetuneConfig), progress=False)
        out[f"{key}_accuracy"] = float(res.results["test"]["accuracy"])
    return out


def lora(seed: int, work_dir: Path) -> dict[str, float]:
    """The lora section's two fine-tunes of MiniLM (quick): every weight, and LoRA r=8."""
    from gradwise.demo._lora import _fit, _settings

    s = {**_settings(True), "seed": seed}
    full = _fit("full", False, s)
    low = _fit("lora", True, s, work_dir / "demo-lora")
    return {
        "full_accuracy": float(full["test accuracy"]),
        "lora_accuracy": float(low["test accuracy"]),
        "full_trainable": float(full["trainable parameters"]),
        "lora_trainable": float(low["trainable parameters"]),
    }


def activations(seed: int, work_dir: Path) -> dict[str, float]:
    from gradwise.demo._see_why import activations as section

    r = section(work_dir / "demo-activations", quick=True, seed=seed)
    return {k: float(v) for k, v in r.items() if k.endswith(("_accuracy", "_grad"))}


def weight_decay(seed: int, work_dir: Path) -> dict[str, float]:
    """The weight-decay section's two quick grids: where each lr row's good band ends.

    ``adamw_edge_slope``: slope of log10(AdamW's edge decay) vs log10(lr);
    ``edge_ratio_decades``: min over lr of log10(AdamW's edge / Adam + L2's).
    """
    from gradwise.demo._weight_decay import weight_decay as section

    r = section(work_dir / "demo-weight-decay", quick=True, seed=seed)
    return {k: float(r[k]) for k in ("adamw_edge_slope", "adam_l2_edge_slope", "edge_ratio_decades")}


def regularize(seed: int, work_dir: Path) -> dict[str, float]:
    from gradwise.demo._see_why import regularize as section

    r = section(work_dir / "demo-regularize", quick=True, seed=seed)
    return {
        "gap_none": float(r["dropout0_bn0_gap"]),
        "gap_dropout": float(r["dropout0.5_bn0_gap"]),
        "gap_batchnorm": float(r["dropout0_bn1_gap"]),
        "gap_both": float(r["dropout0.5_bn1_gap"]),
    }


def sparsity(seed: int, work_dir: Path) -> dict[str, float]:
    from gradwise.demo._see_why import sparsity as section

    r = section(work_dir / "demo-sparsity", quick=True, seed=seed)
    out = {}
    for kind in ("l1", "l2"):
        out[f"{kind}_zeros"] = float(r[f"{kind}_sparsest_within_2pts_zero_weights"])
        out[f"{kind}_accuracy"] = float(r[f"{kind}_sparsest_within_2pts_val_accuracy"])
    return out


def instruct(seed: int, work_dir: Path) -> dict[str, float]:
    """The instruct section's quick plan through its :func:`run_demo` with ``seed``.

    The seed draws the train/val/test splits, the adapters' initial weights and
    the batch order; the base model is the plan's (built once, from the cache).
    """
    from gradwise.demo._instruct import PLANS, run_demo

    r = run_demo(work_dir / "demo-instruct", PLANS["quick"], seed=seed, verbose=False)
    return {k: float(r[k]) for k in ("exact_match_before", "exact_match_after")}
