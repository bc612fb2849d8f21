"""The learning rate's one home: the param groups, and the one function that scales it.

``lr`` lives in ``optimizer.param_groups[i]["lr"]``; every transform reads it
there at step time. A scheduler keeps base rates beside it (``initial_lr`` in
the group, ``base_lrs`` on the scheduler, and the rates ``get_last_lr()``
reports), so changing the lr of a running optimizer means changing all of
them together. :func:`scale_lr` is the one function that does it (the
divergence guard's cut, the trend rule's restore); :func:`set_lr` writes one
rate per group (the range test's sweep, a resumed schedule, the rate lr_find
chose).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from gradwise._torch_compat import set_last_lr

GROUP_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
"""Param-group keys that hold a learning rate: the group's own and the base
rates a scheduler keeps there (``initial_lr`` for every torch scheduler and
:func:`gradwise.schedules.attach`, ``max_lr``/``min_lr`` for ``OneCycleLR``)."""

SCHEDULER_LR_LISTS = ("base_lrs", "max_lrs")
"""Scheduler attributes that hold one rate per group (``max_lrs``: ``CyclicLR``)."""


def _write(group: dict[str, Any], key: str, value: Any) -> None:
    # A tensor lr is filled in place: a fused optimizer or a scheduler may hold a reference.
    current = group.get(key)
    if isinstance(current, torch.Tensor):
        current.fill_(value.item() if isinstance(value, torch.Tensor) else value)
    else:
        group[key] = value.clone() if isinstance(value, torch.Tensor) else value


def set_lr(optimizer: torch.optim.Optimizer, lrs: float | Sequence[float]) -> None:
    """Set each param group's ``lr`` (one value for all groups, or one per group).

    Only ``group["lr"]`` changes: the base rates of an attached scheduler stay,
    so its next step computes the lr from them again. A tensor ``lr`` (a fused
    or capturable optimizer) is filled in place.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> set_lr(opt, 0.02); opt.param_groups[0]["lr"]
        0.02
    """
    groups = optimizer.param_groups
    values = [lrs] * len(groups) if isinstance(lrs, (int, float, torch.Tensor)) else list(lrs)
    if len(values) != len(groups):
        raise ValueError(f"set_lr: {len(values)} rates for {len(groups)} param groups; give one per group")
    for group, value in zip(groups, values):
        _write(group, "lr", value)


def scale_lr(optimizer: torch.optim.Optimizer, factor: float, scheduler: Any = None) -> None:
    """Multiply the learning rate by ``factor`` everywhere it is held, so that all places agree.

    Every group's ``lr`` and the base rates a scheduler keeps in the group
    (:data:`GROUP_LR_KEYS`: ``initial_lr``, ``max_lr``, ``min_lr``) are
    scaled; with ``scheduler`` (any torch ``LRScheduler``, a
    :func:`gradwise.schedules.attach` one included) its per-group lists
    (:data:`SCHEDULER_LR_LISTS`: ``base_lrs``, ``max_lrs``) and the rates
    ``get_last_lr()`` reports are scaled too. A scheduler computes each new
    lr from its base rates (``initial_lr * schedule(t)``), so scaling only
    ``group["lr"]`` would be undone at its next step. Tensor rates are scaled
    in place, each tensor once even where a list shares it with a group.

    Args:
        optimizer: any ``torch.optim.Optimizer``.
        factor: the multiplier, a finite number >= 0.
        scheduler: the scheduler attached to ``optimizer``, or None.

    Example:
        >>> from gradwise.schedules import attach, constant
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> sched = attach(opt, constant())
        >>> scale_lr(opt, 0.5, sched)
        >>> opt.param_groups[0]["lr"], opt.param_groups[0]["initial_lr"], sched.base_lrs
        (0.05, 0.05, [0.05])
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor < math.inf:
        raise ValueError(f"scale_lr: factor must be a finite number >= 0, got {factor!r}")
    seen: set[int] = set()

    def scaled(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            if id(value) not in seen:
                seen.add(id(value))
                value.mul_(factor)
            return value
        return value * factor

    for group in optimizer.param_groups:
        for key in GROUP_LR_KEYS:
            if key in group:
                group[key] = scaled(group[key])
    if scheduler is not None:
        for name in SCHEDULER_LR_LISTS:
            values = getattr(scheduler, name, None)
            if isinstance(values, list):
                setattr(scheduler, name, [scaled(v) for v in values])
        if callable(getattr(scheduler, "get_last_lr", None)):
            set_last_lr(scheduler, [scaled(v) for v in scheduler.get_last_lr()])
