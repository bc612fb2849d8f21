"""How gradwise prints a value to a person: numbers with significant digits, never a repr."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any


def format_value(value: Any, digits: int = 4) -> str:
    """A value as a short readable string for the console.

    Floats keep ``digits`` significant digits (``6.1e-07`` stays visible where
    ``.4f`` would print ``0.0000``; ``0.4545`` stays ``0.4545``); ints and bools
    print as they are; NumPy / torch scalars print like the Python number they
    hold; mappings print as ``key=value, ...`` and sequences as ``a, b, ...``
    (each item formatted the same way); anything else as ``str(value)``.

    Example:
        >>> format_value(6.1e-7), format_value(0.4545), format_value({"a": 1, "b": 0.5})
        ('6.1e-07', '0.4545', 'a=1, b=0.5')
    """
    if hasattr(value, "item") and tuple(getattr(value, "shape", (1,))) == ():
        value = value.item()  # a NumPy / torch scalar
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        value = float(value)
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={format_value(v, digits)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v, digits) for v in value)
    return str(value)


def format_pairs(values: Mapping[str, Any], digits: int = 4, sep: str = "  ") -> str:
    """``key=value`` pairs of a mapping, each value through :func:`format_value`.

    Example:
        >>> format_pairs({"loss": 0.123456, "accuracy": 1.0})
        'loss=0.1235  accuracy=1'
    """
    return sep.join(f"{k}={format_value(v, digits)}" for k, v in values.items())
