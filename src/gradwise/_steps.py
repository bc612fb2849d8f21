"""One gradwise progress bar for a long step outside a Trainer, and quiet transformers loading.

:func:`step_progress` shows a bar (or a spinner when the length is unknown)
on a terminal, but only once the step has taken ``delay`` seconds, so quick
steps print nothing; the bar is removed when the step ends, so nothing stale
stays below the results. :func:`forward_progress` advances such a bar on
each forward pass of a model (a range test, an evaluation loop) without the
loop knowing. :func:`quiet_transformers` silences transformers' own loading
bars and log lines within gradwise's calls and restores them afterwards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

DELAY_S = 2.0  # a step shorter than this shows no bar


class _Bar:
    """The handle :func:`step_progress` yields: ``advance(n)``, ``update(...)``."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def update(self, **fields: Any) -> None:
        """``completed=``, ``total=`` or ``description=`` of the bar."""
        if self._progress is not None:
            self._progress.update(self._task, **fields)


@contextlib.contextmanager
def step_progress(
    description: str,
    total: float | None = None,
    *,
    enabled: bool = True,
    delay: float = DELAY_S,
    console: Any = None,
) -> Iterator[_Bar]:
    """A transient bar on stderr for one long step; shown only after ``delay`` seconds.

    Args:
        description: what is happening, e.g. ``"lr_find"``.
        total: the number of units (None: a spinner with the elapsed time).
        enabled: False yields a handle that does nothing.
        delay: seconds before the bar appears.
        console: a ``rich.console.Console`` (default: stderr); nothing is
            drawn when it is not a terminal (a log file stays clean).

    Example:
        >>> with step_progress("counting", total=3) as bar:
        ...     for _ in range(3):
        ...         bar.advance()
    """
    if not enabled:
        yield _Bar(None, None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield _Bar(None, None)
        return
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    progress = Progress(*columns, TimeElapsedColumn(), console=console, transient=True)
    task = progress.add_task(description, total=total)
    lock, started = threading.Lock(), [False]
    done = [False]

    def start() -> None:
        with lock:
            if not done[0]:
                progress.start()
                started[0] = True

    timer = threading.Timer(delay, start)
    timer.daemon = True
    timer.start()
    try:
        yield _Bar(progress, task)
    finally:
        timer.cancel()
        with lock:
            done[0] = True
            if started[0]:
                progress.stop()


@contextlib.contextmanager
def forward_progress(model: Any, bar: _Bar) -> Iterator[None]:
    """Advance ``bar`` by one on each forward pass of ``model`` (a hook, removed on exit)."""
    handle = model.register_forward_hook(lambda *_: bar.advance())
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Within the block: no transformers progress bars ("Loading weights") and only its errors.

    Both settings are put back as they were, so a user's own transformers
    calls outside gradwise keep theirs.
    """
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # transformers absent: nothing to quiet
        yield
        return
    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def call_quietly(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` inside :func:`quiet_transformers`."""
    with quiet_transformers():
        return fn(*args, **kwargs)


def fit_progress(label: str, *, enabled: bool = True, console: Any = None) -> Any:
    """A Trainer callback showing one transient bar per fit: ``label: epoch e/E`` over its batches.

    For a long fit whose per-epoch lines would be noise (a demo's inner runs);
    a user's training uses :class:`gradwise.train.ProgressBar`.

    Example:
        >>> # Trainer(..., callbacks=[fit_progress("minilm gradual")])
    """
    from gradwise.train import Callback

    class FitProgress(Callback):
        order = -100

        def __init__(self) -> None:
            self._cm: Any = None
            self._bar = _Bar(None, None)

        def on_fit_start(self, state: Any) -> None:
            self._cm = step_progress(label, total=state.batches_per_epoch, enabled=enabled,
                                     console=console)  # fmt: skip
            self._bar = self._cm.__enter__()

        def on_epoch_start(self, state: Any) -> None:
            self._bar.update(total=state.batches_per_epoch, completed=state.batch_in_epoch,
                             description=f"{label}: epoch {state.epoch}/{state.epochs}")  # fmt: skip

        def on_step_end(self, state: Any) -> None:
            self._bar.update(completed=state.batch_in_epoch)

        def on_fit_end(self, state: Any) -> None:
            self._close()

        def on_exception(self, state: Any, exc: BaseException) -> None:
            self._close()

        def _close(self) -> None:
            if self._cm is not None:
                self._cm.__exit__(None, None, None)
                self._cm, self._bar = None, _Bar(None, None)

    return FitProgress()
