"""The typed state callbacks read, the ``Control`` they return, and the event list.

A callback never reaches into the trainer. At each event it receives one
:class:`TrainState` (the same object, updated in place by the trainer) and may
return a :class:`Control` saying what it wants changed: stop training, skip the
coming optimizer step, or emit event records for the logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

EVENTS: tuple[str, ...] = (
    "on_fit_start",
    "on_epoch_start",
    "on_batch_start",
    "on_after_backward",
    "on_before_step",
    "on_step_end",
    "on_validation_end",
    "on_epoch_end",
    "on_fit_end",
    "on_exception",
    "on_event",
)
"""Every event a callback can handle, in the order they first fire.

::

    on_fit_start
    for each epoch:
        on_epoch_start
        for each batch:
            on_batch_start
            forward, loss, backward
            on_after_backward          every batch (gradients still accumulating)
            if the accumulation group is complete:
                on_before_step         full gradients, before clipping and the step
                clip, optimizer.step(), scheduler.step(), zero_grad()
                on_step_end
        on_validation_end              only when validation data was given
        on_epoch_end                   state.metrics holds the epoch record
    on_fit_end
    on_exception(state, exc)           instead of on_fit_end when training raises
    on_event(state, record)            whenever a callback or the trainer emits an event
"""


@dataclass
class Control:
    """What a callback asks the trainer to change; return it from any event.

    Attributes:
        stop: end training. From a batch-level event the current batch is the
            last one; the partial epoch is still validated and recorded.
        skip_step: from ``on_before_step`` only: drop this step's gradients
            instead of applying them (e.g. they are NaN).
        events: event records to log, built with :meth:`emit`; the trainer adds
            ``"type": "event"``, ``"epoch"`` and ``"step"`` and passes each one
            to every callback's ``on_event``.

    Example:
        >>> Control.emit("early_stop", "no improvement in 3 epochs", stop=True).stop
        True
    """

    stop: bool = False
    skip_step: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def emit(cls, kind: str, message: str, *, stop: bool = False, **data: Any) -> Control:
        """A Control carrying one event record ``{"kind", "message", **data}``."""
        return cls(stop=stop, events=[{"kind": kind, "message": message, **data}])


@dataclass(eq=False)
class TrainState:
    """Everything a callback may read, updated in place by the trainer.

    Counting: an *epoch* is one pass over the training data, a *batch* is one
    forward/backward pass, a *step* is one optimizer step (``grad_accum``
    batches), so ``steps_per_epoch = ceil(batches_per_epoch / grad_accum)``.

    Attributes:
        epoch: the current epoch, 1-based (0 before the first one starts).
        epochs: the number of epochs ``fit`` runs to.
        step: optimizer steps done since the run began (resumes included).
        batch_in_epoch: batches done in the current epoch.
        batches: batches done since the run began.
        batches_per_epoch: ``len`` of the training data in batches, or None
            for an iterable without a length.
        steps_per_epoch: ``ceil(batches_per_epoch / grad_accum)`` or None.
        loss: loss of the last optimizer step (mean over its batches), a
            detached 0-d tensor on the training device; ``float(state.loss)``
            reads it (a host sync on CUDA, so callbacks read it sparingly).
        last_lr: learning rate of the first parameter group in the last
            optimizer step (what the logs report as ``lr``).
        grad_norm: total gradient norm before clipping of the last step when
            ``clip_grad_norm`` is set, else None (a tensor, like ``loss``).
        metrics: the last epoch record (``train_loss``, ``val_accuracy``, ...)
            or, after ``on_validation_end``, the one being built.
        history: the epoch records so far.
        events: the event records so far (``Control.emit``, resume, ...).
        model, optimizer, scheduler: the objects being trained; callbacks may
            change them in place (load weights, set a learning rate).
        device: the training device.
        resumed: True when this fit continues from a checkpoint.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    epoch: int = 0
    epochs: int = 1
    step: int = 0
    batch_in_epoch: int = 0
    batches: int = 0
    batches_per_epoch: int | None = None
    steps_per_epoch: int | None = None
    loss: torch.Tensor | None = None
    last_lr: float | None = None
    grad_norm: torch.Tensor | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False
    _snapshot: Callable[[], dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def lr(self) -> list[float]:
        """Current learning rate of each optimizer parameter group."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def snapshot(self) -> dict[str, Any]:
        """The full resumable state at this point, as plain types and tensors.

        Valid at a step boundary (``on_step_end``, ``on_validation_end``,
        ``on_epoch_end``); :func:`gradwise.train.save_checkpoint` writes it and
        ``Trainer.fit(resume=...)`` continues from it bit for bit.
        """
        if self._snapshot is None:
            raise RuntimeError("snapshot() is only available while Trainer.fit runs")
        return self._snapshot()


class Callback:
    """Base class with a no-op method for every event in :data:`EVENTS`.

    Subclasses override the events they need and return a :class:`Control` or
    None. Callbacks run in list order, stable-sorted by :attr:`order` (lower
    first); :class:`Checkpoint` uses 100 so that it saves the other callbacks'
    state after they have handled the same event.

    A callback with state to resume implements :meth:`state_dict` and
    :meth:`load_state_dict` (plain types and tensors only).

    Example:
        >>> class StopAtStep(Callback):
        ...     def on_step_end(self, state):
        ...         return Control(stop=True) if state.step >= 10 else None
    """

    order: int = 0

    def on_fit_start(self, state: TrainState) -> Control | None: ...
    def on_epoch_start(self, state: TrainState) -> Control | None: ...
    def on_batch_start(self, state: TrainState) -> Control | None: ...
    def on_after_backward(self, state: TrainState) -> Control | None: ...
    def on_before_step(self, state: TrainState) -> Control | None: ...
    def on_step_end(self, state: TrainState) -> Control | None: ...
    def on_validation_end(self, state: TrainState) -> Control | None: ...
    def on_epoch_end(self, state: TrainState) -> Control | None: ...
    def on_fit_end(self, state: TrainState) -> Control | None: ...
    def on_exception(self, state: TrainState, exc: BaseException) -> Control | None: ...
    def on_event(self, state: TrainState, record: dict[str, Any]) -> Control | None: ...

    def state_dict(self) -> dict[str, Any]:
        """State to store in a checkpoint; empty for a stateless callback."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class History(list):
    """The epoch records of a run (a list of dicts), plus its event records.

    Example:
        >>> h = History([{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.4}])
        >>> h.series("val_loss")
        [0.5, 0.4]
    """

    def __init__(self, records: Iterable[dict[str, Any]] = (), events: Iterable[dict] = ()):
        super().__init__(records)
        self.events: list[dict[str, Any]] = list(events)

    def series(self, key: str) -> list[Any]:
        """The values of ``key`` over the epochs that have it."""
        return [r[key] for r in self if key in r]
