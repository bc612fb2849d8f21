"""The checks of a number, an int and a flag that every gradwise module shares.

Each raises :class:`~gradwise.errors.ConfigError` (a ``ValueError``) naming the
owner, the field, what is allowed and the value given, in one wording::

    >>> integer("Trainer", "epochs", 3, minimum=1)
    3
    >>> number("Trainer", "clip_grad_norm", 0.0, low=0.0, low_open=True)
    Traceback (most recent call last):
    ...
    gradwise.errors.ConfigError: Trainer: clip_grad_norm must be a number > 0, got 0.0
"""

from __future__ import annotations

import math
from typing import Any

from gradwise.errors import ConfigError


def _allowed(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def number(
    owner: str,
    field: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> float | None:
    """``value`` as a finite float within the bounds (bools and strings are refused).

    With ``optional`` None is allowed too (and returned).
    """
    if optional and value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)
        ok = (low is None or (v > low if low_open else v >= low)) and (
            high is None or (v < high if high_open else v <= high)
        )
    if not ok:
        raise ConfigError(
            f"{owner}: {field} must be a number {_allowed(low, high, low_open, high_open)}"
            f"{' or None' if optional else ''}, got {value!r}"
        )
    return float(value)


def integer(
    owner: str, field: str, value: Any, *, minimum: int | None = None, optional: bool = False
) -> int | None:
    """``value`` as an int (not a bool, not a float) at least ``minimum`` (or None with ``optional``)."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ConfigError(f"{owner}: {field} must be an int{bound}{' or None' if optional else ''}, got {value!r}")
    return value


def flag(owner: str, field: str, value: Any) -> bool:
    """A real bool (YAML's ``true``/``false``), not a truthy string or number."""
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}: {field} must be true or false, got {value!r}")
    return value
