"""Learning-rate schedules as pure functions of the step, and the LR range test.

A schedule maps the step ``t`` to a multiplier of the base learning rate;
:func:`attach` turns it into a torch ``LRScheduler`` that keeps every param
group's own base rate; :func:`lr_find` runs the range test.

>>> from gradwise.schedules import warmup_cosine, attach
>>> s = warmup_cosine(total_steps=1000, warmup=50)
>>> round(s(25), 3), s(50), s(1000)
(0.5, 1.0, 0.0)
"""

from gradwise.schedules._attach import ScheduledLR, attach
from gradwise.schedules._base import Schedule
from gradwise.schedules._cosine import Cosine, WarmupCosine, cosine, warmup_cosine
from gradwise.schedules._cycle import (
    Cyclic,
    OneCycle,
    SlantedTriangular,
    cyclic,
    one_cycle,
    slanted_triangular,
)
from gradwise.schedules._decays import WSD, Linear, Polynomial, linear, polynomial, wsd
from gradwise.schedules._lr_find import LRFinderResult, lr_find
from gradwise.schedules._plot import plot_schedule
from gradwise.schedules._registry import SCHEDULES, schedule
from gradwise.schedules._sequence import Sequence, sequence
from gradwise.schedules._simple import (
    Constant,
    Exponential,
    InverseSqrt,
    LinearWarmup,
    StepDecay,
    constant,
    exponential,
    inverse_sqrt,
    linear_warmup,
    step_decay,
)

__all__ = [
    "Constant",
    "Cosine",
    "Cyclic",
    "Exponential",
    "InverseSqrt",
    "LRFinderResult",
    "Linear",
    "LinearWarmup",
    "OneCycle",
    "Polynomial",
    "SCHEDULES",
    "Schedule",
    "ScheduledLR",
    "Sequence",
    "SlantedTriangular",
    "StepDecay",
    "WSD",
    "WarmupCosine",
    "attach",
    "constant",
    "cosine",
    "cyclic",
    "exponential",
    "inverse_sqrt",
    "linear",
    "linear_warmup",
    "lr_find",
    "one_cycle",
    "plot_schedule",
    "polynomial",
    "schedule",
    "sequence",
    "slanted_triangular",
    "step_decay",
    "warmup_cosine",
    "wsd",
]
