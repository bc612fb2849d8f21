"""Build a schedule from its config: ``schedule(name, total_steps=None, **kw)``."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from typing import Any

from gradwise.errors import ConfigError, unknown
from gradwise.schedules._base import Schedule
from gradwise.schedules._cosine import Cosine, WarmupCosine
from gradwise.schedules._cycle import Cyclic, OneCycle, SlantedTriangular
from gradwise.schedules._decays import WSD, Linear, Polynomial
from gradwise.schedules._sequence import Sequence
from gradwise.schedules._simple import Constant, Exponential, InverseSqrt, LinearWarmup, StepDecay

SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls
    for cls in (
        Constant,
        StepDecay,
        Exponential,
        Cosine,
        LinearWarmup,
        WarmupCosine,
        OneCycle,
        SlantedTriangular,
        InverseSqrt,
        Sequence,
        Polynomial,
        Linear,
        Cyclic,
        WSD,
    )
}


def schedule(name: str, total_steps: int | None = None, **kwargs: Any) -> Schedule:
    """Build a schedule by registry name, as a config file describes it.

    Args:
        name: one of ``constant, step_decay, exponential, cosine,
            linear_warmup, warmup_cosine, one_cycle, slanted_triangular,
            inverse_sqrt, sequence, polynomial, linear, cyclic, wsd``. A ``Schedule`` object is returned as
            it is, so callers may accept either form.
        total_steps: the run's length in optimizer steps, when known. It is
            passed to schedules that take ``total_steps`` (unless ``kwargs``
            has its own), and it resolves fractions.
        **kwargs: the schedule's arguments. Step-count arguments
            (``warmup``, ``warmup_steps``, ``step_size``, ``cycle_steps``,
            ``total_steps``, ``boundaries``, ``decay``, ``stable``,
            ``step_size_up``, ``step_size_down``) accept an int (absolute steps) or
            a float in (0, 1), a fraction of ``total_steps`` rounded to the
            nearest step (at least 1). For ``sequence``, ``schedules`` is a
            list of configs (dicts with a ``name``) or schedule objects; a
            child config gets the length of its segment as its total_steps.

    Raises:
        ConfigError: unknown name or argument (with the closest match), a
            missing argument, a fraction without ``total_steps``, or a value
            out of range.

    >>> schedule("warmup_cosine", total_steps=1000, warmup=0.05)
    WarmupCosine(total_steps=1000, warmup=50, min_factor=0.0, start_factor=0.0, num_cycles=0.5)
    """
    if isinstance(name, Schedule):
        if kwargs:
            raise ConfigError(
                f"schedule: got a built {name!r} and extra arguments {sorted(kwargs)}"
            )
        return name
    if not isinstance(name, str) or name not in SCHEDULES:
        raise unknown("schedule", str(name), SCHEDULES)
    cls = SCHEDULES[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in kwargs:
        if key not in fields:
            raise unknown(f"{name} argument", key, fields)
    if total_steps is not None:
        total_steps = _resolve_steps(name, "total_steps", total_steps, None)
    args = dict(kwargs)
    if "total_steps" in fields and "total_steps" not in args and total_steps is not None:
        args["total_steps"] = total_steps
    for key in cls.step_fields:
        if key == "boundaries" and key in args:
            args[key] = [
                _resolve_steps(name, f"boundaries[{i}]", b, total_steps)
                for i, b in enumerate(_as_list(name, key, args[key]))
            ]
        elif key in args and args[key] is not None:
            args[key] = _resolve_steps(name, key, args[key], total_steps)
    if cls is Sequence and "schedules" in args:
        args["schedules"] = _children(args["schedules"], args.get("boundaries", []), total_steps)
    missing = [
        f.name
        for f in fields.values()
        if f.name not in args
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        hint = " (or the run's total_steps)" if "total_steps" in missing else ""
        raise ConfigError(f"schedule {name!r} needs {', '.join(missing)}{hint}")
    return cls(**args)


def _as_list(name: str, key: str, value: Any) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name}: {key} must be a list, got {value!r}")
    return list(value)


def _children(items: Any, boundaries: list[int], total_steps: int | None) -> list[Any]:
    """Build the schedules of a sequence; child configs get their segment length."""
    items = _as_list("sequence", "schedules", items)
    starts = [0, *boundaries]
    ends = [*boundaries, total_steps]
    built = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            if "name" not in item:
                raise ConfigError(f"sequence: schedules[{i}] needs a 'name'")
            child = dict(item)
            if i < len(starts) and ends[i] is not None and ends[i] > starts[i]:
                child.setdefault("total_steps", ends[i] - starts[i])
            built.append(schedule(**child))
        else:
            built.append(item)
    return built


def _resolve_steps(name: str, key: str, value: Any, total_steps: int | None) -> int:
    """Turn an int or a fraction of ``total_steps`` into a step count."""
    if isinstance(value, bool):
        pass
    elif isinstance(value, numbers.Integral):
        return int(value)
    elif isinstance(value, numbers.Real):
        if 0.0 < value < 1.0:
            if total_steps is None:
                raise ConfigError(
                    f"{name}: {key}={value} is a fraction of the total steps, but total_steps "
                    "is not known; give an integer step count or total_steps"
                )
            return max(1, round(value * total_steps))
        if float(value).is_integer():
            return int(value)
    raise ConfigError(
        f"{name}: {key} must be an integer step count or a fraction in (0, 1) of "
        f"total_steps, got {value!r}"
    )
