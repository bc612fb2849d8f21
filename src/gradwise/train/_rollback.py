"""Rolling training back: an in-memory restore point and a learning-rate cut.

:class:`gradwise.train.DivergenceGuard` takes a :class:`Snapshot` every few
steps and, when the run fails, restores it and calls :func:`scale_lr`.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Any

import torch

from gradwise._torch_compat import set_last_lr
from gradwise.train._state import TrainState

GROUP_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
"""Param-group keys that hold a learning rate: the group's own and the base
rates a scheduler keeps there (``initial_lr`` for every torch scheduler and
:func:`gradwise.schedules.attach`, ``max_lr``/``min_lr`` for ``OneCycleLR``)."""

SCHEDULER_LR_LISTS = ("base_lrs", "max_lrs")
"""Scheduler attributes that hold one rate per group (``max_lrs``: ``CyclicLR``); the
rates ``get_last_lr()`` reports are scaled too (through ``set_last_lr``)."""


def scale_lr(optimizer: torch.optim.Optimizer, scheduler: Any, factor: float) -> None:
    """Multiply every group's learning rate by ``factor``, and a scheduler's base rates too.

    A scheduler computes each new lr from base rates it keeps apart
    (``initial_lr * schedule(t)``); scaling only ``group["lr"]`` would be undone
    at its next step. So the lr-valued group keys of :data:`GROUP_LR_KEYS` and
    the per-group lists of :data:`SCHEDULER_LR_LISTS` are all scaled. Tensor
    rates are scaled in place (a fused optimizer holds a reference), each
    tensor once even where a list shares it with a group.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> scale_lr(opt, None, 0.5)
        >>> opt.param_groups[0]["lr"]
        0.05
    """
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


_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), torch.dtype, torch.device)
_IMMUTABLE_TYPES = frozenset(_IMMUTABLE)


def _clone(obj: Any) -> Any:
    """A copy of a state dict with every tensor cloned (10x faster than ``copy.deepcopy``).

    Dicts keep their type and a module state dict its ``_metadata`` (the
    format versions ``load_state_dict`` reads; ``state_dict()`` builds a new
    one on every call and nothing writes to it, so it is shared, not copied);
    objects of other types are deep-copied. The guard takes a copy every few
    steps, so the common types are tested first, by exact type.
    """
    kind = type(obj)
    if kind in _IMMUTABLE_TYPES:
        return obj
    if kind is dict:
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if kind is list:
        return [_clone(v) for v in obj]
    if isinstance(obj, _IMMUTABLE):
        return obj
    if isinstance(obj, dict):
        out = kind((k, _clone(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):
            out._metadata = obj._metadata  # type: ignore[attr-defined]
        return out
    if isinstance(obj, list):
        return [_clone(v) for v in obj]
    if kind is tuple:
        return tuple(_clone(v) for v in obj)
    return copy.deepcopy(obj)


@dataclass
class Snapshot:
    """The training state at the end of one step, copied so that training cannot change it."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    losses: list[float]

    @classmethod
    def take(cls, state: TrainState, losses: deque[float]) -> Snapshot:
        sched = state.scheduler
        return cls(
            step=state.step,
            model=_clone(state.model.state_dict()),
            # state_dict() returns the live state tensors (momentum buffers...):
            # without copies the snapshot would follow training.
            optimizer=_clone(state.optimizer.state_dict()),
            scheduler=None if sched is None else copy.deepcopy(sched.state_dict()),
            losses=list(losses),
        )

    def restore(self, state: TrainState) -> None:
        state.model.load_state_dict(self.model)  # copies into the existing tensors
        # Optimizer.load_state_dict keeps the tensors it is given (a shallow
        # copy): hand it copies so that the snapshot stays as it was.
        state.optimizer.load_state_dict(_clone(self.optimizer))
        if state.scheduler is not None and self.scheduler is not None:
            state.scheduler.load_state_dict(copy.deepcopy(self.scheduler))

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "losses": self.losses,
        }
