"""Schedules without a cycle: constant, step decay, exponential, warm-up, inverse sqrt.

Each returns a multiplier ``m(t)`` of the base learning rate at step ``t``
(``t = 0`` is the first optimizer step), so ``lr_t = base_lr * m(t)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from gradwise.schedules._base import Schedule, check_float, check_int, check_step, linear_anneal


@dataclass(frozen=True)
class Constant(Schedule):
    """A constant multiplier: ``m(t) = factor``.

    Use it for a fixed learning rate, or as a flat piece of a ``sequence``.

    >>> constant()(1000)
    1.0
    """

    factor: float = 1.0

    name: ClassVar[str] = "constant"
    total_steps: ClassVar[None] = None

    def __post_init__(self) -> None:
        check_float(self.name, "factor", self.factor, 0.0)

    def __call__(self, step: int) -> float:
        check_step(step)
        return float(self.factor)


@dataclass(frozen=True)
class StepDecay(Schedule):
    """Multiply by ``gamma`` every ``step_size`` steps: ``m(t) = gamma ** floor(t / step_size)``.

    The classic staircase of ResNet-era training (torch's ``StepLR``). Use it
    when a fixed budget is split into phases; cosine usually matches it with
    one hyperparameter less.

    >>> s = step_decay(step_size=10, gamma=0.5)
    >>> s(9), s(10), s(25)
    (1.0, 0.5, 0.25)
    """

    step_size: int
    gamma: float = 0.1

    name: ClassVar[str] = "step_decay"
    total_steps: ClassVar[None] = None
    step_fields: ClassVar[tuple[str, ...]] = ("step_size",)

    def __post_init__(self) -> None:
        check_int(self.name, "step_size", self.step_size, 1)
        check_float(self.name, "gamma", self.gamma, 0.0, low_open=True)

    def __call__(self, step: int) -> float:
        return float(self.gamma) ** (check_step(step) // self.step_size)


@dataclass(frozen=True)
class Exponential(Schedule):
    """Multiply by ``gamma`` every step: ``m(t) = gamma ** t`` (torch's ``ExponentialLR``).

    A smooth version of step decay; ``gamma`` is usually close to 1
    (``0.999`` halves the rate in about 700 steps).

    >>> exponential(gamma=0.5)(3)
    0.125
    """

    gamma: float

    name: ClassVar[str] = "exponential"
    total_steps: ClassVar[None] = None

    def __post_init__(self) -> None:
        check_float(self.name, "gamma", self.gamma, 0.0, low_open=True)

    def __call__(self, step: int) -> float:
        return float(self.gamma) ** check_step(step)


@dataclass(frozen=True)
class LinearWarmup(Schedule):
    """Rise linearly from ``start_factor`` to 1 over ``warmup_steps``, then hold 1.

    ``m(t) = start_factor + (1 - start_factor) * min(t, W) / W`` with
    ``W = warmup_steps`` (torch's ``LinearLR`` with ``end_factor=1``).
    Warm-up keeps the first updates small while adaptive optimizers' moment
    estimates are still noisy and while large-batch training settles
    (Goyal et al. 2017). ``start_factor=0`` (the default) wastes the very
    first step, as in Hugging Face's warm-up schedules; ``warmup_steps=0``
    means no warm-up.

    >>> s = linear_warmup(warmup_steps=4)
    >>> [s(t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """

    warmup_steps: int
    start_factor: float = 0.0

    name: ClassVar[str] = "linear_warmup"
    total_steps: ClassVar[None] = None
    step_fields: ClassVar[tuple[str, ...]] = ("warmup_steps",)

    def __post_init__(self) -> None:
        check_int(self.name, "warmup_steps", self.warmup_steps, 0)
        check_float(self.name, "start_factor", self.start_factor, 0.0, 1.0)

    def __call__(self, step: int) -> float:
        step = check_step(step)
        if step >= self.warmup_steps:
            return 1.0
        return linear_anneal(float(self.start_factor), 1.0, step / self.warmup_steps)


@dataclass(frozen=True)
class InverseSqrt(Schedule):
    """Linear warm-up, then decay as one over the square root of the step.

    ``m(t) = t / W`` for ``t < W`` and ``m(t) = sqrt(W / t)`` after, with
    ``W = warmup_steps``: the Transformer schedule of Vaswani et al. (2017),
    ``d^-0.5 * min(t^-0.5, t * W^-1.5)``, normalised so that its peak (at
    ``t = W``) is 1. With a ``timescale`` ``tau`` the decay is
    ``1 / sqrt((t - W + tau) / tau)``: a larger ``tau`` decays more slowly
    (Hugging Face's ``get_inverse_sqrt_schedule``; its default ``tau = W``
    is the formula above). Use it for long or open-ended runs: it has no horizon.

    >>> s = inverse_sqrt(warmup_steps=4)
    >>> s(2), s(4), s(16)
    (0.5, 1.0, 0.5)
    >>> inverse_sqrt(warmup_steps=4, timescale=8)(28)
    0.5
    """

    warmup_steps: int
    timescale: int | None = None

    name: ClassVar[str] = "inverse_sqrt"
    total_steps: ClassVar[None] = None
    step_fields: ClassVar[tuple[str, ...]] = ("warmup_steps",)

    def __post_init__(self) -> None:
        check_int(self.name, "warmup_steps", self.warmup_steps, 1)
        if self.timescale is not None:
            check_int(self.name, "timescale", self.timescale, 1)

    def __call__(self, step: int) -> float:
        step = check_step(step)
        if step < self.warmup_steps:
            return step / self.warmup_steps
        if self.timescale is None:
            return 1.0 / math.sqrt(step / self.warmup_steps)
        # HF's arrangement: shift = timescale - warmup.
        return 1.0 / math.sqrt((step + (self.timescale - self.warmup_steps)) / self.timescale)


constant = Constant
step_decay = StepDecay
exponential = Exponential
linear_warmup = LinearWarmup
inverse_sqrt = InverseSqrt
