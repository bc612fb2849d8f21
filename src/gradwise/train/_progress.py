"""A terminal progress bar: batches within the epoch, the epoch counter and the live loss."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gradwise.train._distributed import is_main_process
from gradwise.train._state import Callback, TrainState


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def epoch_line(record: dict[str, Any], epochs: int) -> str:
    """One-line summary of an epoch record, e.g. ``epoch 2/5  step 188  train_loss 0.31 ...``."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"step {record['step']}"]
    parts += [
        f"{k} {_fmt(v)}"
        for k, v in record.items()
        if k not in ("type", "epoch", "step", "batches", "epoch_time")
    ]
    parts.append(_seconds(record.get("epoch_time")))
    return "  ".join(parts)


def _seconds(value: Any) -> str:
    """An epoch time for a person: ``12.3s``, or two significant digits below 1 s
    (``0.034s``: a fast epoch must not read as ``0.0s``)."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "?s"
    return f"{value:.1f}s" if value >= 0.95 else f"{value:.2g}s"


class ProgressBar(Callback):
    """Show training progress with ``rich``.

    On a terminal: a bar over the batches of the current epoch with the epoch
    counter, the optimizer step and the loss of the last step, redrawn at most
    every ``refresh`` seconds (reading the loss is a device sync on CUDA, so
    it happens only then). Elsewhere (a log file, CI) it prints one summary
    line per epoch, never wrapped (a log is read by line). Each epoch's line
    comes before the events of that epoch (early stop, checkpoints...), which
    are printed as they come. When training ends the bar is removed, so nothing
    stale stays below what is printed next. Under ``torchrun`` only rank 0 prints.

    Args:
        enabled: False turns the callback into a no-op (handy from a config).
        refresh: seconds between redraws.
        console: a ``rich.console.Console`` to draw on (default: stderr).

    Example:
        >>> # Trainer(..., callbacks=[ProgressBar()])
    """

    order = -100  # before every other callback: an epoch's line precedes its events

    def __init__(self, enabled: bool = True, refresh: float = 0.2, console: Console | None = None):
        self.enabled, self.refresh = enabled, refresh
        self.console = console
        self._progress: Progress | None = None
        self._task: Any = None
        self._next = 0.0
        self._silent = False  # a process other than rank 0
        self._printed = -1  # the last epoch whose line is printed

    def on_fit_start(self, state: TrainState) -> None:
        self._silent = not is_main_process()
        if not self.enabled or self._silent:
            return
        self.console = self.console or Console(stderr=True)
        if not self.console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("step {task.fields[step]}  loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("", total=None, step=state.step, loss="-")

    def on_epoch_start(self, state: TrainState) -> None:
        if self._progress is None:
            return
        self._progress.reset(
            self._task,
            total=state.batches_per_epoch,
            completed=state.batch_in_epoch,
            description=f"epoch {state.epoch}/{state.epochs}",
            step=state.step,
            loss="-",
        )
        self._progress.refresh()
        self._next = time.monotonic() + self.refresh

    def on_step_end(self, state: TrainState) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.refresh
        self._progress.update(
            self._task,
            completed=state.batch_in_epoch,
            step=state.step,
            loss=_fmt(float(state.loss)),
        )
        self._progress.refresh()

    def on_validation_end(self, state: TrainState) -> None:
        self._epoch_line(state)

    def on_epoch_end(self, state: TrainState) -> None:
        self._epoch_line(state)

    def _epoch_line(self, state: TrainState) -> None:
        if not self.enabled or self._silent or self._printed == state.epoch:
            return
        self._printed = state.epoch
        if self._progress is not None:
            self._progress.update(self._task, completed=state.batch_in_epoch, step=state.step)
            self._progress.refresh()
        self._print(epoch_line(state.metrics, state.epochs))

    def on_event(self, state: TrainState, record: dict[str, Any]) -> None:
        if self.enabled and not self._silent and self.console is not None:
            self._print(f"[{record['kind']}] {record['message']}")

    def _print(self, line: str) -> None:
        # soft_wrap: one physical line whatever the console width (rich wraps at
        # 80 columns when it writes to a file or a pipe)
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def on_fit_end(self, state: TrainState) -> None:
        self._stop()

    def on_exception(self, state: TrainState, exc: BaseException) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
