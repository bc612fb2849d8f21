"""Demo section "train": an MLP with dropout and batch norm learns digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradwise.config import parse_config
from gradwise.demo._registry import register


@register("train", "MLP with dropout + batch norm on digits (the main job)", order=0)
def train_digits(out_dir: Path, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    from gradwise.recipes.train import run

    cfg = parse_config(
        {
            "name": out_dir.name,
            "runs_dir": str(out_dir.parent),
            "data": {"name": "digits", "val": 0.15, "test": 0.15, "seed": seed},
            "model": {"hidden": [256, 128], "dropout": 0.2, "batchnorm": True},
            "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4},
            "training": {"epochs": 15 if quick else 30, "batch_size": 64, "seed": seed},
            "callbacks": {"early_stopping": {"monitor": "val_accuracy", "patience": 8}},
        }
    )
    result = run(cfg)
    return {
        "test_accuracy": result.results["test"]["accuracy"],
        "report": str(result.run_dir / "report.html"),
    }
