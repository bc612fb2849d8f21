"""Decays to an end factor: polynomial, linear and warmup-stable-decay (WSD).

Each is a multiplier ``m(t)`` of the param group's base rate and equals the
torch scheduler or Hugging Face ``get_scheduler`` entry named in its docstring
step for step (tests/schedules).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from gradwise.errors import ConfigError, unknown
from gradwise.schedules._base import Schedule, check_float, check_int, check_step, set_field


def _check_warmup(name: str, total_steps: int, warmup: int) -> None:
    check_int(name, "total_steps", total_steps, 1)
    check_int(name, "warmup", warmup, 0)
    if warmup >= total_steps:
        raise ConfigError(f"{name}: warmup ({warmup}) must be smaller than total_steps ({total_steps})")


@dataclass(frozen=True)
class Polynomial(Schedule):
    """Linear warm-up, then polynomial decay to ``end_factor`` at ``total_steps``.

    With ``W = warmup``, ``T = total_steps``, ``e = end_factor``:

        m(t) = t / W                                          for t < W
        m(t) = e + (1 - e) * (1 - (t - W) / (T - W)) ** power   for W <= t <= T
        m(t) = e                                              for t > T

    ``warmup=0, end_factor=0`` is torch's ``PolynomialLR(total_iters=T,
    power=power)``; Hugging Face's ``polynomial`` (``get_polynomial_decay_
    schedule_with_warmup``) is ``end_factor = lr_end / lr``. ``power=1`` is a
    linear decay, ``power=2`` spends longer at low rates.

    >>> s = polynomial(total_steps=10, power=2.0)
    >>> s(0), s(5), s(10), s(20)
    (1.0, 0.25, 0.0, 0.0)
    """

    total_steps: int
    power: float = 1.0
    warmup: int = 0
    end_factor: float = 0.0

    name: ClassVar[str] = "polynomial"
    step_fields: ClassVar[tuple[str, ...]] = ("total_steps", "warmup")

    def __post_init__(self) -> None:
        _check_warmup(self.name, self.total_steps, self.warmup)
        check_float(self.name, "power", self.power, 0.0)
        check_float(self.name, "end_factor", self.end_factor, 0.0, 1.0)

    def __call__(self, step: int) -> float:
        step = check_step(step)
        if step < self.warmup:
            return step / self.warmup
        if step > self.total_steps:
            return float(self.end_factor)
        remaining = 1 - (step - self.warmup) / (self.total_steps - self.warmup)
        # HF's arrangement (lr_range * remaining**power + lr_end) in factor units.
        return (1.0 - self.end_factor) * remaining**self.power + self.end_factor


@dataclass(frozen=True)
class Linear(Schedule):
    """Linear warm-up from 0, then a straight line from ``start_factor`` to ``end_factor``.

    With ``W = warmup``, ``T = total_steps``:

        m(t) = t / W                                              for t < W
        m(t) = s + (e - s) * min(t - W, T - W) / (T - W)            for t >= W

    ``warmup=0`` is torch's ``LinearLR(start_factor=s, end_factor=e,
    total_iters=T)`` (``end_factor`` below 1 is a decay); ``start_factor=1,
    end_factor=0`` with a warm-up is Hugging Face's ``linear``
    (``get_linear_schedule_with_warmup``).

    >>> s = linear(total_steps=10, warmup=2)
    >>> s(1), s(2), s(6), s(10)
    (0.5, 1.0, 0.5, 0.0)
    """

    total_steps: int
    warmup: int = 0
    start_factor: float = 1.0
    end_factor: float = 0.0

    name: ClassVar[str] = "linear"
    step_fields: ClassVar[tuple[str, ...]] = ("total_steps", "warmup")

    def __post_init__(self) -> None:
        _check_warmup(self.name, self.total_steps, self.warmup)
        check_float(self.name, "start_factor", self.start_factor, 0.0, 1.0)
        check_float(self.name, "end_factor", self.end_factor, 0.0, 1.0)

    def __call__(self, step: int) -> float:
        step = check_step(step)
        if step < self.warmup:
            return step / self.warmup
        span = self.total_steps - self.warmup
        s, e = float(self.start_factor), float(self.end_factor)
        if self.warmup == 0 and s == 1.0 and e == 0.0:
            return max(0.0, (self.total_steps - step) / self.total_steps)
        if self.warmup and s == 1.0 and e == 0.0:
            return max(0.0, (self.total_steps - step) / span)  # HF's arrangement
        return s + (e - s) * min(step - self.warmup, span) / span


_SHAPES = ("linear", "cosine", "1-sqrt")


@dataclass(frozen=True)
class WSD(Schedule):
    """Warmup-stable-decay (Hu et al. 2024, MiniCPM; Hägele et al. 2024).

    Warm up over ``warmup`` steps, hold 1 for ``stable`` steps, decay over
    ``decay`` steps to ``min_factor``, then hold ``min_factor``. Give
    ``stable`` or ``total_steps`` (then ``stable = total_steps - warmup - decay``,
    as Hugging Face computes it). With the
    phase progress ``p`` in [0, 1) and ``f`` the phase's shape,
    ``m = min_factor + (1 - min_factor) * f(p)``:

    * warm-up ``f``: linear ``p``, cosine ``(1 - cos(pi p)) / 2``, 1-sqrt ``1 - sqrt(1 - p)``;
    * decay ``f``: linear ``1 - p``, cosine ``(1 + cos(2 pi num_cycles p)) / 2``,
      1-sqrt ``1 - sqrt(p)`` (Hägele et al.'s cooldown).

    Equals Hugging Face's ``get_wsd_schedule`` (``warmup_type``,
    ``decay_type``, ``min_lr_ratio``, ``num_cycles``). The stable phase lets
    a run be extended or branched into a short decay at any point.

    >>> s = wsd(total_steps=10, warmup=2, decay=4, decay_type="linear")
    >>> [s(t) for t in (0, 1, 2, 5, 6, 8, 10)]
    [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0]
    """

    decay: int
    total_steps: int | None = None
    warmup: int = 0
    stable: int | None = None
    warmup_type: str = "linear"
    decay_type: str = "cosine"
    min_factor: float = 0.0
    num_cycles: float = 0.5

    name: ClassVar[str] = "wsd"
    step_fields: ClassVar[tuple[str, ...]] = ("decay", "total_steps", "warmup", "stable")

    def __post_init__(self) -> None:
        check_int(self.name, "decay", self.decay, 0)
        check_int(self.name, "warmup", self.warmup, 0)
        if self.stable is None:
            if self.total_steps is None:
                raise ConfigError("wsd: give stable (steps at the peak) or total_steps")
            check_int(self.name, "total_steps", self.total_steps, 1)
            stable = self.total_steps - self.warmup - self.decay
            if stable < 0:
                raise ConfigError(f"wsd: warmup ({self.warmup}) + decay ({self.decay}) exceed "
                                  f"total_steps ({self.total_steps})")
            set_field(self, "stable", stable)
        check_int(self.name, "stable", self.stable, 0)
        if self.total_steps is None:
            set_field(self, "total_steps", self.warmup + self.stable + self.decay)
        check_int(self.name, "total_steps", self.total_steps, 1)
        for field in ("warmup_type", "decay_type"):
            if getattr(self, field) not in _SHAPES:
                raise unknown(f"wsd {field}", str(getattr(self, field)), _SHAPES)
        check_float(self.name, "min_factor", self.min_factor, 0.0, 1.0)
        check_float(self.name, "num_cycles", self.num_cycles, 0.0, low_open=True)

    def __call__(self, step: int) -> float:
        step = check_step(step)
        lo = float(self.min_factor)
        if step < self.warmup:
            p = step / max(1, self.warmup)
            f = {"linear": p, "cosine": 0.5 * (1.0 - math.cos(math.pi * p)),
                 "1-sqrt": 1.0 - math.sqrt(1.0 - p)}[self.warmup_type]
            return max(0.0, f * (1.0 - lo) + lo)
        if step < self.warmup + self.stable:
            return 1.0
        if step < self.warmup + self.stable + self.decay:
            p = (step - self.warmup - self.stable) / max(1, self.decay)
            f = {"linear": 1.0 - p, "cosine": 0.5 * (1.0 + math.cos(math.pi * float(self.num_cycles) * 2.0 * p)),
                 "1-sqrt": 1.0 - math.sqrt(p)}[self.decay_type]
            return max(0.0, f * (1.0 - lo) + lo)
        return lo


polynomial = Polynomial
linear = Linear
wsd = WSD
