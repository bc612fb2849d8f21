"""`sequence`: run schedules one after another, each on its own clock."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from gradwise.errors import ConfigError
from gradwise.schedules._base import Schedule, check_int, check_step, set_field


@dataclass(frozen=True)
class Sequence(Schedule):
    """Join schedules at step boundaries; each later schedule restarts its step count.

    With boundaries ``b_1 < ... < b_k`` and schedules ``s_0 .. s_k``:

        m(t) = s_i(t - b_i)   for b_i <= t < b_{i+1}   (b_0 = 0, b_{k+1} = inf)

    as torch's ``SequentialLR`` does with milestones. ``total_steps`` is
    ``b_k + s_k.total_steps`` when the last schedule has a horizon.

    >>> s = sequence([linear_warmup(warmup_steps=2), exponential(gamma=0.5)], [2])
    >>> [s(t) for t in range(5)]
    [0.0, 0.5, 1.0, 0.5, 0.25]
    """

    schedules: tuple[Callable[[int], float], ...]
    boundaries: tuple[int, ...]

    name: ClassVar[str] = "sequence"
    step_fields: ClassVar[tuple[str, ...]] = ("boundaries",)

    def __post_init__(self) -> None:
        schedules = tuple(self.schedules)
        boundaries = tuple(
            check_int(self.name, f"boundaries[{i}]", b, 1) for i, b in enumerate(self.boundaries)
        )
        if not schedules:
            raise ConfigError("sequence: give at least one schedule")
        for i, s in enumerate(schedules):
            if not callable(s):
                raise ConfigError(f"sequence: schedules[{i}] is not callable: {s!r}")
        if len(boundaries) != len(schedules) - 1:
            raise ConfigError(
                f"sequence: {len(schedules)} schedules need {len(schedules) - 1} boundaries, "
                f"got {len(boundaries)}"
            )
        if any(a >= b for a, b in zip(boundaries, boundaries[1:])):
            raise ConfigError(
                f"sequence: boundaries must increase strictly, got {list(boundaries)}"
            )
        set_field(self, "schedules", schedules)
        set_field(self, "boundaries", boundaries)

    @property
    def total_steps(self) -> int | None:
        last = getattr(self.schedules[-1], "total_steps", None)
        if last is None:
            return None
        return (self.boundaries[-1] if self.boundaries else 0) + last

    def __call__(self, step: int) -> float:
        step = check_step(step)
        i = bisect.bisect_right(self.boundaries, step)
        offset = self.boundaries[i - 1] if i else 0
        return float(self.schedules[i](step - offset))

    def to_config(self) -> dict[str, Any]:
        for i, s in enumerate(self.schedules):
            if not isinstance(s, Schedule):
                raise ConfigError(
                    f"sequence: schedules[{i}] ({s!r}) is not a gradwise Schedule, "
                    "so the sequence has no config form"
                )
        return super().to_config()


sequence = Sequence
