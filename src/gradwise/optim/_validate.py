"""Checks of hyperparameter values, shared by transforms, aliases and ``build``.

Each raises ``ConfigError`` naming the owner, the field, the value and what is
allowed; ``ConfigError`` is a ``ValueError``, as torch.optim raises for the same
mistakes.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from gradwise.errors import ConfigError


def number(owner: str, field: str, value: Any, low: float = 0.0, high: float | None = None,
           high_open: bool = False) -> float:
    """``value`` as a float in ``[low, high]`` (``[low, high)`` with ``high_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{owner}: {field} must be a number; got {value!r}")
    value = float(value)
    too_high = high is not None and (value >= high if high_open else value > high)
    if value < low or too_high or math.isinf(value):
        if high is None:
            allowed = f">= {low:g}"
        else:
            allowed = f"in [{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{owner}: {field} must be {allowed}; got {value!r}")
    return value


def betas(owner: str, value: Any) -> tuple[float, float]:
    """A pair of floats in ``[0, 1)``; YAML lists are accepted."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(f"{owner}: betas must be a pair (beta1, beta2) in [0, 1); got {value!r}")
    b1 = number(owner, "betas[0]", value[0], 0.0, 1.0, high_open=True)
    b2 = number(owner, "betas[1]", value[1], 0.0, 1.0, high_open=True)
    return (b1, b2)


def flag(owner: str, field: str, value: Any) -> bool:
    """A real bool (YAML's ``yes``/``true``), not a truthy string."""
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}: {field} must be true or false; got {value!r}")
    return value


def lr(owner: str, value: Any) -> Any:
    """A learning rate: a number >= 0, or a one-element floating Tensor as torch.optim takes.

    A Tensor is kept as it is (a scheduler may update it in place); its value is checked.
    """
    if isinstance(value, Tensor):
        if value.numel() != 1 or not (value.dtype.is_floating_point):
            raise ConfigError(
                f"{owner}: a Tensor lr must be one floating-point element; "
                f"got shape {tuple(value.shape)}, dtype {value.dtype}"
            )
        number(owner, "lr", value.item())
        return value
    return number(owner, "lr", value)


def as_float(value: Any) -> float:
    """A number or a one-element Tensor (a Tensor lr) as a Python float."""
    return value.item() if isinstance(value, Tensor) else float(value)
