"""Rolling training back: an in-memory restore point and a learning-rate cut.

:class:`gradwise.train.DivergenceGuard` takes a :class:`Snapshot` every few
steps and, when the run fails, restores it and lowers the lr with
:func:`gradwise.optim.scale_lr`.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

from gradwise.train._guard_layout import Layout
from gradwise.train._state import TrainState

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
            out._metadata = obj._metadata
        return out
    if isinstance(obj, list):
        return [_clone(v) for v in obj]
    if kind is tuple:
        return tuple(_clone(v) for v in obj)
    return copy.deepcopy(obj)


def _refill(old: Any, new: Any, dst: list[torch.Tensor], src: list[torch.Tensor]) -> bool:
    """Make ``old``, an earlier copy of the state dict ``new``, a copy of it again, in place.

    Numbers and other immutable values are written into ``old``'s dicts, other
    objects copied as :func:`_clone` does, and each tensor pair is queued in
    ``dst``/``src`` for :func:`copy_all` (no allocation). Returns False,
    leaving ``old`` half updated, where the two differ in structure: a key
    added or gone, a tensor of another shape, dtype or layout, or a tensor
    subclass; the caller then copies afresh.
    """
    if type(old) is not type(new) or old.keys() != new.keys():
        return False
    for k, v in new.items():
        kind = type(v)
        if kind is torch.Tensor:
            o = old[k]
            if (
                type(o) is not torch.Tensor
                or o.shape != v.shape
                or o.dtype != v.dtype
                or v.layout != torch.strided
            ):
                return False
            dst.append(o)
            src.append(v)
        elif kind in _IMMUTABLE_TYPES:
            old[k] = v
        elif isinstance(v, dict):
            if not _refill(old[k], v, dst, src):
                return False
        else:
            old[k] = _clone(v)
    return True


_FOREACH_COPY = getattr(torch, "_foreach_copy_", None)


def copy_all(dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
    """``d.copy_(s)`` for every pair, in one multi-tensor kernel (``torch._foreach_copy_``).

    Falls back to one ``copy_`` per tensor if this torch has no such kernel
    (the test ``test_foreach_copy_is_there`` says so when it goes).
    """
    if not dst:
        return
    with torch.no_grad():
        if _FOREACH_COPY is not None:
            _FOREACH_COPY(dst, src)
        else:
            for d, s in zip(dst, src, strict=True):
                d.copy_(s)


@dataclass
class Snapshot:
    """The training state at the end of one step, copied so that training cannot change it."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    losses: list[float]
    # Whether its tensors are its own (a copy it took, never handed out), so
    # that a later take may overwrite them in place.
    owned: bool = field(default=False, repr=False, compare=False)
    # (layout, its generation, this copy's tensors in the layout's order): set by
    # Layout.bind, so that a later take or restore is one multi-tensor copy.
    bound: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def take(
        cls,
        state: TrainState,
        losses: deque[float],
        reuse: Snapshot | None = None,
        layout: Layout | None = None,
    ) -> Snapshot:
        """Copy the state; into ``reuse`` (a copy no longer needed), in place, where it fits.

        With ``reuse``, the tensors of ``reuse`` are overwritten (one
        multi-tensor copy, no allocation) and ``reuse`` itself is returned;
        if the state's structure changed since, a fresh copy is. A snapshot
        that handed its tensors out (:meth:`as_dict`) or was built from a
        checkpoint is never overwritten. With ``layout`` (the live tensors,
        found once), a ``reuse`` bound to it is refreshed without walking
        ``state_dict()``, and a copy taken through it is bound to it.
        """
        sched = state.scheduler
        scheduler = None if sched is None else copy.deepcopy(sched.state_dict())
        if layout is None or not layout.ready():
            return cls._take(state, losses, reuse, scheduler)
        if reuse is not None and reuse.owned:
            if layout.copy_in(reuse, copy_all):
                reuse.step, reuse.scheduler, reuse.losses = state.step, scheduler, list(losses)
                return reuse
            snap = cls._take(state, losses, reuse, scheduler)
        else:  # a fresh copy: clone the live tensors the layout found
            snap = cls._fresh(state, *layout.templates, scheduler, losses)
            layout.groups_into(snap)
        layout.bind(snap)
        return snap

    @classmethod
    def _take(
        cls, state: TrainState, losses: deque[float], reuse: Snapshot | None, scheduler: Any
    ) -> Snapshot:
        # state_dict() returns the live state tensors (momentum buffers...):
        # without copies the snapshot would follow training.
        msd, osd = state.model.state_dict(), state.optimizer.state_dict()
        if reuse is not None and reuse.owned:
            reuse.owned, reuse.bound = False, None
            dst: list[torch.Tensor] = []
            src: list[torch.Tensor] = []
            if _refill(reuse.model, msd, dst, src) and _refill(reuse.optimizer, osd, dst, src):
                copy_all(dst, src)
                reuse.step, reuse.scheduler, reuse.losses = state.step, scheduler, list(losses)
                reuse.owned = True
                return reuse
        return cls._fresh(state, msd, osd, scheduler, losses)

    @classmethod
    def _fresh(
        cls, state: TrainState, msd: Any, osd: Any, scheduler: Any, losses: deque[float]
    ) -> Snapshot:
        """A new copy of the state dicts ``msd``/``osd`` (clones of their tensors)."""
        return cls(
            step=state.step,
            model=_clone(msd),
            optimizer=_clone(osd),
            scheduler=scheduler,
            losses=list(losses),
            owned=True,
        )

    def restore(self, state: TrainState, last: bool = False, layout: Layout | None = None) -> None:
        """Load the copy back; ``last``: it is not used again (its tensors go to the optimizer).

        With ``layout`` and a copy bound to it, the copy is written into the
        live tensors in place (one multi-tensor copy) instead.
        """
        if layout is not None and layout.copy_out(self, copy_all):
            self._restore_scheduler(state)
            return
        state.model.load_state_dict(self.model)  # copies into the existing tensors
        # Optimizer.load_state_dict keeps the tensors it is given (a shallow
        # copy): hand it copies so that the snapshot stays as it was.
        state.optimizer.load_state_dict(self.optimizer if last else _clone(self.optimizer))
        self.owned = self.owned and not last
        self.bound = None if last else self.bound
        self._restore_scheduler(state)

    def _restore_scheduler(self, state: TrainState) -> None:
        if state.scheduler is not None and self.scheduler is not None:
            state.scheduler.load_state_dict(copy.deepcopy(self.scheduler))

    def as_dict(self) -> dict[str, Any]:
        """The fields, tensors included (not copies): a later take no longer reuses them."""
        self.owned, self.bound = False, None
        return {
            "step": self.step,
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "losses": self.losses,
        }
