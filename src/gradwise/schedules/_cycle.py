"""Up-then-down schedules: one-cycle (Smith) and slanted triangular (ULMFiT)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from gradwise.errors import ConfigError, unknown
from gradwise.schedules._base import (
    Schedule,
    check_float,
    check_int,
    check_step,
    cosine_anneal,
    linear_anneal,
)

_ANNEALS = {"cos": cosine_anneal, "linear": linear_anneal}


@dataclass(frozen=True)
class OneCycle(Schedule):
    """The 1cycle policy (Smith & Topin 2019) as a multiplier of the *maximum* lr.

    The param group's ``lr`` is the peak ``max_lr``. With ``T = total_steps``,
    ``lo = 1 / div_factor`` and ``end = lo / final_div_factor`` the
    multiplier anneals ``lo -> 1`` over steps ``[0, pct_start*T - 1]`` and
    then ``1 -> end`` over ``[pct_start*T - 1, T - 1]``; ``anneal`` is
    ``"cos"`` (``b + (a - b)(1 + cos(pi p))/2``) or ``"linear"``. With
    ``three_phase=True`` the second phase returns to ``lo`` at
    ``2*pct_start*T - 2`` and a third phase anneals ``lo -> end`` (fastai's
    original shape). Phase boundaries and formulas are those of torch's
    ``OneCycleLR``, so ``lr = max_lr * m(t)`` is the same sequence; after
    ``T - 1`` the multiplier holds ``end`` (torch raises). Momentum cycling is
    not part of a learning-rate schedule.

    Use it to train fast from scratch with SGD or Adam: the warm-up lets a
    large peak rate be reached, the long anneal settles the weights. Pick the
    peak with :func:`lr_find`.

    >>> s = one_cycle(total_steps=100, pct_start=0.25, div_factor=10, final_div_factor=100)
    >>> [round(s(t), 12) for t in (0, 24, 99)]
    [0.1, 1.0, 0.001]
    """

    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: str = "cos"
    three_phase: bool = False

    name: ClassVar[str] = "one_cycle"
    step_fields: ClassVar[tuple[str, ...]] = ("total_steps",)

    def __post_init__(self) -> None:
        check_int(self.name, "total_steps", self.total_steps, 2)
        check_float(self.name, "pct_start", self.pct_start, 0.0, 1.0, low_open=True, high_open=True)
        check_float(self.name, "div_factor", self.div_factor, 0.0, low_open=True)
        check_float(self.name, "final_div_factor", self.final_div_factor, 0.0, low_open=True)
        if self.anneal not in _ANNEALS:
            raise unknown("one_cycle anneal", str(self.anneal), _ANNEALS)
        if not isinstance(self.three_phase, bool):
            raise ConfigError(
                f"one_cycle: three_phase must be true or false, got {self.three_phase!r}"
            )
        # Each phase needs a positive length, or its pct would divide by zero.
        warm = self.pct_start * self.total_steps
        if warm <= 1.0:
            raise ConfigError(
                f"one_cycle: pct_start * total_steps must exceed 1 step for the warm-up "
                f"phase, got {self.pct_start} * {self.total_steps} = {warm:g}"
            )
        if self.three_phase and 2.0 * warm >= self.total_steps + 1:
            raise ConfigError(
                f"one_cycle: with three_phase, pct_start must be below about 0.5 so that "
                f"the last phase has steps, got {self.pct_start}"
            )

    def _phases(self) -> tuple[tuple[float, float, float], ...]:
        """``(last step, start multiplier, end multiplier)`` of each phase."""
        lo = 1.0 / self.div_factor
        end = lo / self.final_div_factor
        warm_end = float(self.pct_start * self.total_steps) - 1.0
        last = float(self.total_steps - 1)
        if self.three_phase:
            back = float(2.0 * self.pct_start * self.total_steps) - 2.0
            return ((warm_end, lo, 1.0), (back, 1.0, lo), (last, lo, end))
        return ((warm_end, lo, 1.0), (last, 1.0, end))

    def __call__(self, step: int) -> float:
        step = check_step(step)
        anneal = _ANNEALS[self.anneal]
        phases = self._phases()
        begin = 0.0
        for i, (stop, start_m, end_m) in enumerate(phases):
            if step <= stop or i == len(phases) - 1:
                return anneal(start_m, end_m, min((step - begin) / (stop - begin), 1.0))
            begin = stop
        raise AssertionError("unreachable: the last phase always matches")


@dataclass(frozen=True)
class SlantedTriangular(Schedule):
    """Slanted triangular learning rates (Howard & Ruder 2018, ULMFiT eq. 3).

    A short linear increase and a long linear decay, as a multiplier of the
    peak ``eta_max``. With ``T = total_steps``, ``cut = floor(T * cut_frac)``:

        p = t / cut                                          if t < cut
        p = 1 - (t - cut) / (cut * (1 / cut_frac - 1))        otherwise
        m(t) = (1 + p * (ratio - 1)) / ratio

    so the rate goes from ``1/ratio`` up to 1 at ``cut`` and back to
    ``1/ratio`` at ``T``; ``p`` is clamped at 0 after that. Designed for
    fine-tuning a pretrained model: converge quickly to a suitable region,
    then refine.

    >>> s = slanted_triangular(total_steps=100, cut_frac=0.1, ratio=32)
    >>> s(0), s(10), s(100)
    (0.03125, 1.0, 0.03125)
    """

    total_steps: int
    cut_frac: float = 0.1
    ratio: float = 32.0

    name: ClassVar[str] = "slanted_triangular"
    step_fields: ClassVar[tuple[str, ...]] = ("total_steps",)

    def __post_init__(self) -> None:
        check_int(self.name, "total_steps", self.total_steps, 2)
        check_float(self.name, "cut_frac", self.cut_frac, 0.0, 1.0, low_open=True, high_open=True)
        check_float(self.name, "ratio", self.ratio, 1.0)
        cut = math.floor(self.total_steps * self.cut_frac)
        if not 1 <= cut < self.total_steps:
            raise ConfigError(
                f"slanted_triangular: floor(total_steps * cut_frac) must be at least 1 step, "
                f"got floor({self.total_steps} * {self.cut_frac}) = {cut}"
            )

    def __call__(self, step: int) -> float:
        step = check_step(step)
        cut = math.floor(self.total_steps * self.cut_frac)
        if step < cut:
            p = step / cut
        else:
            p = max(1.0 - (step - cut) / (cut * (1.0 / self.cut_frac - 1.0)), 0.0)
        return (1.0 + p * (self.ratio - 1.0)) / self.ratio


one_cycle = OneCycle
slanted_triangular = SlantedTriangular
