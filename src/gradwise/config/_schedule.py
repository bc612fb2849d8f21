"""One config model per schedule of :mod:`gradwise.schedules`, picked by ``name``.

The fields are the schedule dataclass's own, with its defaults; step counts
(``warmup``, ``total_steps``, ...) also take a fraction in (0, 1) of the run's
total steps, and ``total_steps`` may be left out: the run supplies it. The
schedule checks its values once, when the config is loaded::

    >>> from gradwise.config import schedule_config
    >>> cfg = schedule_config(name="warmup_cosine", warmup=0.05)
    >>> cfg.options(), cfg.build(total_steps=200)
    ({'warmup': 0.05}, WarmupCosine(total_steps=200, warmup=10, min_factor=0.0, start_factor=0.0))
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic import TypeAdapter, model_validator

from gradwise.config._tagged import TaggedConfig, model_from_signature, tagged_union
from gradwise.errors import ConfigError
from gradwise.schedules import SCHEDULES, Schedule, schedule

_NOMINAL_STEPS = 1000  # a run length to check fractions against at load time
Steps = int | float  # an absolute step count or a fraction of the run's total steps


class ScheduleConfigBase(TaggedConfig):
    """Base of the generated schedule models."""

    def build(self, total_steps: int | None = None) -> Schedule:
        """The schedule, with the run's ``total_steps`` unless the config gives its own."""
        options = self.options()
        if total_steps is not None:
            options.setdefault("total_steps", total_steps)
        return schedule(self.name, **options)

    @model_validator(mode="after")
    def _schedule_accepts(self) -> ScheduleConfigBase:
        try:
            self.build(_NOMINAL_STEPS)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


def _fields(cls: type[Schedule]) -> dict[str, tuple[Any, Any]]:
    hints = typing.get_type_hints(cls)
    fields: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        ann = hints.get(f.name, Any)
        if f.name == "boundaries":
            ann = list[Steps]
        elif f.name == "schedules":
            ann = list[dict[str, Any]]
        elif f.name in cls.step_fields:
            ann = Steps | None if f.name == "total_steps" else Steps
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None if f.name == "total_steps" else ...
        fields[f.name] = (ann, default)
    return fields


SCHEDULE_MODELS: dict[str, type[TaggedConfig]] = {
    name: model_from_signature(ScheduleConfigBase, name, _fields(cls)) for name, cls in SCHEDULES.items()
}

# ``schedule:`` of a run config: ``{name: warmup_cosine, warmup: 0.05}``.
ScheduleConfig = tagged_union("schedule", SCHEDULE_MODELS, default=None)
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ScheduleConfig)


def schedule_config(**values: Any) -> Any:
    """Validate ``values`` into the schedule model its ``name`` picks."""
    return _ADAPTER.validate_python(values)
