"""PNG plots of a schedule (drawn with gradwise's one Figure/PNG helper, :mod:`gradwise._io`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from gradwise._io import new_figure, save_png
from gradwise.errors import ConfigError
from gradwise.schedules._base import check_int


def plot_schedule(
    schedule: Callable[[int], float],
    total_steps: int | None,
    path: str | os.PathLike,
    base_lr: float = 1.0,
) -> Path:
    """Draw ``base_lr * schedule(t)`` for ``t = 0 .. total_steps - 1`` into a PNG file.

    Args:
        schedule: a gradwise schedule or any callable ``step -> multiplier``.
        total_steps: steps to draw; ``None`` uses ``schedule.total_steps``.
        path: the PNG file to write (parent folders are created).
        base_lr: scale of the y axis; 1.0 draws the multiplier itself.

    Returns the path written.

    >>> from gradwise.schedules import one_cycle, plot_schedule
    >>> plot_schedule(one_cycle(total_steps=1000), None, "one_cycle.png", base_lr=0.1)  # doctest: +SKIP
    """
    if total_steps is None:
        total_steps = getattr(schedule, "total_steps", None)
        if total_steps is None:
            raise ConfigError(f"plot_schedule: {schedule!r} has no horizon; give total_steps")
    total_steps = check_int("plot_schedule", "total_steps", total_steps, 1)
    steps = list(range(total_steps))
    lrs = [base_lr * float(schedule(t)) for t in steps]
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    ax.plot(steps, lrs, color="tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate" if base_lr != 1.0 else "lr multiplier")
    ax.set_title(_title(schedule))
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def _title(schedule: Callable[[int], float]) -> str:
    text = repr(schedule)
    return text if len(text) <= 80 else text[:77] + "..."
