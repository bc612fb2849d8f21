"""Track the best value of one epoch-record key (shared by EarlyStopping and Checkpoint)."""

from __future__ import annotations

import math
from typing import Any

from gradwise.errors import ConfigError, unknown
from gradwise.train.metrics import METRICS

MODES = ("min", "max", "auto")


def direction(key: str, mode: str, owner: str) -> str:
    """``"min"`` or ``"max"`` for ``key``; ``"auto"`` reads it from the metric name.

    Example:
        >>> direction("val_accuracy", "auto", "EarlyStopping")
        'max'
    """
    if mode not in MODES:
        raise unknown(f"{owner} mode", str(mode), MODES)
    if mode != "auto":
        return mode
    base = key.removeprefix("val_").removeprefix("train_")
    if base in METRICS:
        return "max" if METRICS[base].higher_is_better else "min"
    if "loss" in base:
        return "min"
    raise ConfigError(
        f"{owner}: cannot tell whether {key!r} should go up or down; pass mode='min' or 'max'"
    )


class Monitor:
    """The best value seen of ``metrics[key]``, improving by more than ``min_delta``."""

    def __init__(self, key: str, mode: str, owner: str, min_delta: float = 0.0) -> None:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{owner}: monitor must be an epoch-record key such as 'val_loss'")
        if not isinstance(min_delta, (int, float)) or min_delta < 0:
            raise ConfigError(f"{owner}: min_delta must be a number >= 0, got {min_delta!r}")
        self.key, self.owner, self.min_delta = key, owner, float(min_delta)
        self.mode = direction(key, mode, owner)
        self.value: float | None = None
        self.epoch: int | None = None

    def read(self, metrics: dict[str, Any]) -> float:
        if self.key not in metrics:
            keys = sorted(k for k, v in metrics.items() if isinstance(v, float))
            hint = (
                " (val_* keys need validation data in fit)" if self.key.startswith("val_") else ""
            )
            raise ConfigError(
                f"{self.owner}: monitor {self.key!r} is not in the epoch record{hint}; "
                f"available: {', '.join(keys)}"
            )
        return float(metrics[self.key])

    def update(self, metrics: dict[str, Any]) -> bool:
        """Read the value from an epoch record; True (and remember it) when it improved."""
        v = self.read(metrics)
        if math.isnan(v):
            return False
        better = (
            self.value is None
            or (self.mode == "min" and v < self.value - self.min_delta)
            or (self.mode == "max" and v > self.value + self.min_delta)
        )
        if better:
            self.value, self.epoch = v, metrics.get("epoch")
        return better

    def state(self) -> dict[str, Any]:
        return {"value": self.value, "epoch": self.epoch}

    def load(self, state: dict[str, Any]) -> None:
        self.value, self.epoch = state["value"], state["epoch"]
