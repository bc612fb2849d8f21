"""PNG plots of a schedule; the figure-saving helper `lr_find` shares."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from gradwise.errors import ConfigError
from gradwise.schedules._base import check_int


def new_figure(width: float = 6.0, height: float = 4.0):
    """A matplotlib Figure on the Agg canvas, without touching pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG atomically: a temp file in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


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
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot(steps, lrs, color="tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate" if base_lr != 1.0 else "lr multiplier")
    ax.set_title(_title(schedule))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def _title(schedule: Callable[[int], float]) -> str:
    text = repr(schedule)
    return text if len(text) <= 80 else text[:77] + "..."
