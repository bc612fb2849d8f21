"""Up-then-down schedules: one-cycle (Smith), slanted triangular (ULMFiT), cyclic (Smith)."""

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

    exactly the paper's formula, so the rate goes from ``1/ratio`` up to 1 at
    ``cut`` and back down to ``1/ratio`` at ``t = cut / cut_frac``. That is
    ``T`` when ``T * cut_frac`` is a whole number; otherwise ``floor`` makes
    it earlier (``T=105, cut_frac=0.1``: cut 10, bottom at step 100), and the
    rate holds ``1/ratio`` from there on (``p`` is clamped at 0; the paper's
    formula would go below ``1/ratio``). Designed for fine-tuning a
    pretrained model: converge quickly to a suitable region, then refine.

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


_CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


@dataclass(frozen=True)
class Cyclic(Schedule):
    """Cyclical learning rates (Smith 2017), as torch's ``CyclicLR``, between a base and a peak.

    The param group's ``lr`` is the peak ``max_lr``; the base is the group
    option ``base_lr`` where a group sets one (per-group base and peak, as
    torch's lists), else ``base_factor * max_lr``. With ``S = step_size_up +
    step_size_down``, ``c = floor(1 + t / S)``, ``x = 1 + t / S - c``:

        h = x / r if x <= r else (x - 1) / (r - 1),   r = step_size_up / S
        lr = base + (max_lr - base) * h * g

    with ``g = 1`` (``triangular``), ``1 / 2**(c - 1)`` (``triangular2``,
    halving each cycle) or ``gamma**t`` (``exp_range``). Called as a plain
    function it returns the multiplier ``lr / max_lr`` for ``base_factor``.
    Momentum cycling is not part of a learning-rate schedule.

    >>> s = cyclic(step_size_up=2, base_factor=0.1)
    >>> [round(s(t), 12) for t in range(5)]
    [0.1, 0.55, 1.0, 0.55, 0.1]
    """

    step_size_up: int = 2000
    step_size_down: int | None = None
    mode: str = "triangular"
    gamma: float = 1.0
    base_factor: float = 0.1

    name: ClassVar[str] = "cyclic"
    total_steps: ClassVar[None] = None
    step_fields: ClassVar[tuple[str, ...]] = ("step_size_up", "step_size_down")

    def __post_init__(self) -> None:
        check_int(self.name, "step_size_up", self.step_size_up, 1)
        if self.step_size_down is not None:
            check_int(self.name, "step_size_down", self.step_size_down, 0)
        if self.mode not in _CYCLIC_MODES:
            raise unknown("cyclic mode", str(self.mode), _CYCLIC_MODES)
        check_float(self.name, "gamma", self.gamma, 0.0, low_open=True)
        check_float(self.name, "base_factor", self.base_factor, 0.0, 1.0)

    def height(self, step: int) -> float:
        """``h * g``: where ``step`` sits between the base (0) and the peak (1)."""
        step = check_step(step)
        down = self.step_size_up if self.step_size_down is None else self.step_size_down
        total = float(self.step_size_up + down)
        ratio = self.step_size_up / total
        cycle = math.floor(1 + step / total)
        x = 1.0 + step / total - cycle
        h = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        if self.mode == "triangular":
            return h * 1.0
        if self.mode == "triangular2":
            return h * (1 / (2.0 ** (cycle - 1)))
        return h * self.gamma**step

    def group_lrs(self, max_lrs: list[float], step: int, groups: list[dict]) -> list[float]:
        """The lr of each param group, whose peak is its ``max_lrs`` entry (``attach`` calls this)."""
        h = self.height(step)
        out = []
        for max_lr, group in zip(max_lrs, groups):
            base = group.get("base_lr", max_lr * self.base_factor)
            out.append(base + (max_lr - base) * h)
        return out

    def __call__(self, step: int) -> float:
        return self.base_factor + (1.0 - self.base_factor) * self.height(step)


one_cycle = OneCycle
slanted_triangular = SlantedTriangular
cyclic = Cyclic
