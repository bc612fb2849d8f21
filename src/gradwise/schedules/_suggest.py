"""Rules that read a suggested learning rate off a range-test curve.

Both rules read the smoothed (EMA) curve and ignore its first tenth, where
the bias-corrected average rests on a handful of batches. The EMA lags the
raw loss (with ``smooth=0.98`` by some tens of steps), which moves the
curve's minimum and its steepest part to larger lrs than where they happen;
dividing the minimum's lr by 10 absorbs that shift, which is why
``"minimum"`` is the default: on the digits MLP (tests/schedules) it landed
at 0.74-1.58x the best fixed lr of a grid over 4 seeds (SGD and Adam), while
``"steepest"`` landed at 1.4-2.6x.
"""

from __future__ import annotations

import math

import numpy as np

SUGGESTIONS = ("minimum", "steepest")


def suggest(lrs: list[float], losses: list[float], rule: str) -> tuple[float, int, str]:
    """Return ``(suggested lr, index of the nearest swept lr, description)``."""
    lr = np.asarray(lrs, dtype=float)
    loss = np.asarray(losses, dtype=float)
    n = len(loss)
    skip = n // 10
    low = skip + int(np.argmin(loss[skip:]))
    note = ""
    if low == n - 1:
        note = "; the loss still fell at the end of the sweep: raise max_lr"
    elif low == skip:
        note = "; the loss never fell: lower min_lr"
    if rule == "steepest" and low - skip >= 3:
        slope = np.gradient(loss[skip : low + 1], np.log10(lr[skip : low + 1]))
        index = skip + int(np.argmin(slope))
        return (
            float(lr[index]),
            index,
            "steepest descent of smoothed loss before its minimum" + note,
        )
    value = float(lr[low]) / 10.0
    index = int(np.argmin(np.abs(np.log(lr) - math.log(value))))
    fallback = " (too few points before the minimum for steepest)" if rule == "steepest" else ""
    return value, index, f"lr at minimum smoothed loss / 10{fallback}{note}"
