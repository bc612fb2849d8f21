"""The base of every gradwise config and the field types the recipes share."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator


class Strict(BaseModel):
    """Base of every gradwise config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_betas(v: tuple[float, float]) -> tuple[float, float]:
    for i, b in enumerate(v):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"betas[{i}] must lie in [0, 1), got {b}")
    return v


def _check_device(v: str) -> str:
    if v not in ("auto", "cpu") and not v.startswith("cuda"):
        raise ValueError("device must be 'auto', 'cpu' or 'cuda[:N]'")
    return v


def _check_run_name(v: str) -> str:
    if not v or "/" in v or "\\" in v or v in (".", ".."):
        raise ValueError("name must be a non-empty file name without '/'")
    return v


def _check_lr(v: Any) -> float | str:
    """A learning rate: a finite number > 0, or ``'auto'`` (chosen by lr_find)."""
    if v == "auto":
        return "auto"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError("a number > 0 or 'auto'")
    return float(v)


def _check_distributed(v: Any) -> Any:
    from gradwise.train._fsdp import trainer_mode

    trainer_mode(v)
    return v


def _check_threads(v: Any) -> Any:
    from gradwise.train._threads import parse_threads

    return parse_threads(v)


# Field types shared by the configs of every recipe.
Betas = Annotated[tuple[float, float], AfterValidator(_check_betas)]
Device = Annotated[str, AfterValidator(_check_device)]
# "auto" | "off" | "ddp" | "fsdp" | {fsdp: {mixed_precision, activation_checkpointing}}
Distributed = Annotated[Any, AfterValidator(_check_distributed)]
# CPU threads: N >= 1, or "auto" (the rule of docs/train.md)
Threads = Annotated[Any, AfterValidator(_check_threads)]
# A run's name is the name of its directory under runs_dir.
RunName = Annotated[str, AfterValidator(_check_run_name)]
# The one check of a configured learning rate (the optimizer's ``lr``).
Lr = Annotated[
    float | Literal["auto"], PlainValidator(_check_lr), PlainSerializer(lambda v: v, return_type=Any)
]


class ProxConfig(Strict):
    """A proximal penalty applied after each optimizer step (exact zeros for L1)."""

    kind: Literal["l1", "l2", "elastic_net"] = "l1"
    lam: float = Field(ge=0.0)
    alpha: float | None = Field(None, ge=0.0, le=1.0)
