"""Cosine annealing (with SGDR warm restarts) and warm-up followed by cosine."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from gradwise.errors import ConfigError
from gradwise.schedules._base import (
    Schedule,
    check_float,
    check_int,
    check_step,
    cosine_anneal,
    linear_anneal,
)


@dataclass(frozen=True)
class Cosine(Schedule):
    """Cosine annealing from 1 to ``min_factor``, optionally with warm restarts (SGDR).

    Without restarts (``cycle_steps=None``), over ``T = total_steps``:

        m(t) = min_factor + (1 - min_factor) * (1 + cos(pi * min(t, T) / T)) / 2

    which equals torch's ``CosineAnnealingLR`` with ``eta_min = min_factor *
    base_lr`` up to ``T`` and then holds ``min_factor`` (torch's closed form
    would climb back up).

    With restarts (Loshchilov & Hutter 2017, SGDR), cycle ``i`` lasts
    ``T_i = cycle_steps * cycle_mult**i`` steps; inside a cycle ``t_cur``
    counts from 0 and ``m = min_factor + (1 - min_factor) * (1 + cos(pi *
    t_cur / T_i)) / 2``, jumping back to 1 at each restart (torch's
    ``CosineAnnealingWarmRestarts`` with ``T_0 = cycle_steps``, ``T_mult =
    cycle_mult``). Restarts go on forever; ``total_steps`` is then only the
    planned length of the run (used for plots) and may be omitted.

    Use cosine as the default decay for a fixed budget: no milestones to
    tune, and most of the run is spent at moderate rates.

    >>> s = cosine(total_steps=10, min_factor=0.1)
    >>> s(0), round(s(5), 12), s(10), s(20)
    (1.0, 0.55, 0.1, 0.1)
    >>> r = cosine(cycle_steps=2, cycle_mult=2)
    >>> [round(r(t), 12) for t in range(7)]
    [1.0, 0.5, 1.0, 0.853553390593, 0.5, 0.146446609407, 1.0]
    """

    total_steps: int | None = None
    min_factor: float = 0.0
    cycle_steps: int | None = None
    cycle_mult: float = 1.0

    name: ClassVar[str] = "cosine"
    step_fields: ClassVar[tuple[str, ...]] = ("total_steps", "cycle_steps")

    def __post_init__(self) -> None:
        if self.total_steps is None and self.cycle_steps is None:
            raise ConfigError("cosine: give total_steps (one decay) or cycle_steps (warm restarts)")
        if self.total_steps is not None:
            check_int(self.name, "total_steps", self.total_steps, 1)
        if self.cycle_steps is not None:
            check_int(self.name, "cycle_steps", self.cycle_steps, 1)
        check_float(self.name, "min_factor", self.min_factor, 0.0, 1.0)
        check_float(self.name, "cycle_mult", self.cycle_mult, 1.0)

    def __call__(self, step: int) -> float:
        step = check_step(step)
        if self.cycle_steps is None:
            pct = min(step, self.total_steps) / self.total_steps
        else:
            t_cur, t_i = _position_in_cycle(step, self.cycle_steps, self.cycle_mult)
            pct = t_cur / t_i
        return cosine_anneal(1.0, float(self.min_factor), pct)


def _position_in_cycle(step: int, first: int, mult: float) -> tuple[float, float]:
    """Return ``(steps since the last restart, length of the current cycle)``."""
    if mult == 1.0:
        return float(step % first), float(first)
    # Closed form for the cycle index n (cycles 0..n-1 fill first*(mult^n - 1)/(mult - 1)
    # steps), then corrected by one either way: the log can land a hair on the wrong
    # side of an exact boundary, where the lr must jump back to the top.
    n = int(math.log(step / first * (mult - 1.0) + 1.0, mult))
    while n > 0 and first * (mult**n - 1.0) / (mult - 1.0) > step:
        n -= 1
    while first * (mult ** (n + 1) - 1.0) / (mult - 1.0) <= step:
        n += 1
    start = first * (mult**n - 1.0) / (mult - 1.0)
    return step - start, first * mult**n


@dataclass(frozen=True)
class WarmupCosine(Schedule):
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``min_factor`` at ``total_steps``.

    With ``W = warmup`` and ``T = total_steps``:

        m(t) = start_factor + (1 - start_factor) * t / W                  for t < W
        m(t) = min_factor + (1 - min_factor) * (1 + cos(pi * p)) / 2      for t >= W,
               p = min(t - W, T - W) / (T - W)

    Hugging Face's ``get_cosine_schedule_with_warmup`` is the case
    ``start_factor = min_factor = 0``; its ``num_cycles`` (default 0.5, the
    half cosine) replaces ``pi * p`` by ``2 pi num_cycles p``: ``num_cycles=1``
    goes down and back up to 1 at ``T``, ``0.25`` stops at the midpoint.
    With ``min_factor`` it is HF's ``cosine_with_min_lr``
    (``min_lr_rate = min_factor``). The standard recipe for fine-tuning
    pretrained transformers and for training with Adam/AdamW from scratch.

    >>> s = warmup_cosine(total_steps=10, warmup=2)
    >>> s(0), s(1), s(2), s(10)
    (0.0, 0.5, 1.0, 0.0)
    """

    total_steps: int
    warmup: int
    min_factor: float = 0.0
    start_factor: float = 0.0
    num_cycles: float = 0.5

    name: ClassVar[str] = "warmup_cosine"
    step_fields: ClassVar[tuple[str, ...]] = ("total_steps", "warmup")

    def __post_init__(self) -> None:
        check_int(self.name, "total_steps", self.total_steps, 1)
        check_int(self.name, "warmup", self.warmup, 0)
        if self.warmup >= self.total_steps:
            raise ConfigError(
                f"warmup_cosine: warmup ({self.warmup}) must be smaller than "
                f"total_steps ({self.total_steps})"
            )
        check_float(self.name, "min_factor", self.min_factor, 0.0, 1.0)
        check_float(self.name, "start_factor", self.start_factor, 0.0, 1.0)
        check_float(self.name, "num_cycles", self.num_cycles, 0.0, low_open=True)

    def __call__(self, step: int) -> float:
        step = check_step(step)
        if step < self.warmup:
            return linear_anneal(float(self.start_factor), 1.0, step / self.warmup)
        decay = self.total_steps - self.warmup
        pct = min(step - self.warmup, decay) / decay
        if self.num_cycles == 0.5:
            return cosine_anneal(1.0, float(self.min_factor), pct)
        # HF's arrangement for other cycle counts.
        wave = 0.5 * (1.0 + math.cos(math.pi * float(self.num_cycles) * 2.0 * pct))
        return max(0.0, wave * (1.0 - self.min_factor) + self.min_factor)


cosine = Cosine
warmup_cosine = WarmupCosine
