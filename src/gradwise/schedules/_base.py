"""The `Schedule` base class and the argument checks the schedules share.

A schedule maps the step index ``t = 0, 1, 2, ...`` to a multiplier of the
base learning rate. Every schedule is a frozen dataclass: it holds only its
hyperparameters, so it is hashable, picklable, comparable and prints as the
call that builds it. ``to_config()`` gives the plain dict that
:func:`gradwise.schedules.schedule` turns back into the same object, which is
what a scheduler's ``state_dict`` stores.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers
from typing import Any, ClassVar

from gradwise.errors import ConfigError


class Schedule(abc.ABC):
    """Base class: a learning-rate multiplier as a pure function of the step.

    Subclasses are frozen dataclasses that set ``name`` (their registry
    name) and implement ``__call__(step) -> float``. ``total_steps`` is the
    horizon of the schedule where it has one, else ``None``.

    >>> from gradwise.schedules import cosine
    >>> s = cosine(total_steps=100)
    >>> s(0), s(50), s(100)
    (1.0, 0.5, 0.0)
    """

    name: ClassVar[str] = ""
    # Fields counted in steps: the registry accepts a fraction of the run's
    # total steps for these (``warmup: 0.05``).
    step_fields: ClassVar[tuple[str, ...]] = ()
    # ``total_steps`` is not declared here: dataclasses would take an inherited
    # value as the field's default. Schedules without a horizon declare
    # ``total_steps: ClassVar[None] = None`` themselves.

    @abc.abstractmethod
    def __call__(self, step: int) -> float:
        """The learning-rate factor at ``step``."""

    def to_config(self) -> dict[str, Any]:
        """Return ``{"name": ..., **arguments}``, the inverse of ``schedule(**cfg)``.

        Only plain Python values (str, int, float, bool, None, lists, dicts)
        appear, so the result goes through JSON, YAML and
        ``torch.load(weights_only=True)`` unchanged.
        """
        config: dict[str, Any] = {"name": self.name}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            config[field.name] = _plain(getattr(self, field.name))
        return config


def _plain(value: Any) -> Any:
    if isinstance(value, Schedule):
        return value.to_config()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def check_step(step: int) -> int:
    """Return ``step`` as an int; raise for negative or non-integer steps."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"a schedule is called with an integer step, got {step!r}")
    if step < 0:
        raise ValueError(f"the step of a schedule must be >= 0, got {step}")
    return int(step)


def check_int(schedule: str, field: str, value: Any, minimum: int) -> int:
    """Raise a ConfigError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(
            f"{schedule}: {field} must be an integer >= {minimum} (a step count), got {value!r}"
        )
    return int(value)


def check_float(
    schedule: str,
    field: str,
    value: Any,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Raise a ConfigError unless ``value`` is a real number in the given interval."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open or high == math.inf else "]"
        raise ConfigError(
            f"{schedule}: {field} must be a number in {left}{low:g}, {high:g}{right}, got {value!r}"
        )
    return float(value)


def set_field(obj: Schedule, field: str, value: Any) -> None:
    """Normalise a field of a frozen dataclass in ``__post_init__``."""
    object.__setattr__(obj, field, value)


def cosine_anneal(start: float, end: float, pct: float) -> float:
    """Half-cosine from ``start`` (pct=0) to ``end`` (pct=1).

    Written as ``end + (start - end)/2 * (1 + cos(pi*pct))``, the same
    arrangement torch's OneCycleLR uses, so both round the same way.
    """
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def linear_anneal(start: float, end: float, pct: float) -> float:
    """Straight line from ``start`` (pct=0) to ``end`` (pct=1)."""
    return (end - start) * pct + start
