"""The trend rule of :class:`gradwise.train.DivergenceGuard`: the best epoch so far, and a streak.

A run can diverge slowly: the loss oscillates and creeps upward for several
epochs, each step only a little worse than the last, so that no single step
looks like a spike. What does show it is the per-epoch record: the validation
loss (or metric) stops improving on its best and stays worse. :class:`BestEpoch`
keeps the best value of one monitored field of the epoch record, a copy of the
training state at that epoch (a :class:`~gradwise.train._rollback.Snapshot`),
and the number of epochs in a row that were worse than it.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from gradwise.errors import ConfigError
from gradwise.optim import scale_lr
from gradwise.train._guard_layout import Layout
from gradwise.train._rollback import Snapshot
from gradwise.train._state import TrainState

AUTO = "auto"
"""Monitor ``val_loss`` when the epoch record has it, else ``train_loss`` (the
mean training loss of the epoch: a moving average of the step losses)."""


def lr_level(state: TrainState) -> float:
    """The first group's base rate: ``initial_lr`` where a scheduler keeps one, else ``lr``."""
    group = state.optimizer.param_groups[0]
    return float(group.get("initial_lr", group["lr"]))


class BestEpoch:
    """The best epoch of a run by one monitored field, with a copy of its training state.

    Args:
        monitor: a key of the epoch record (``"val_loss"``, ``"val_accuracy"``...)
            or ``"auto"`` (``val_loss`` when there is validation data, else
            ``train_loss``).
        mode: ``"min"`` when lower is better, ``"max"`` when higher is.
        tolerance: an epoch counts as *worse* than the best only when it is
            beyond it by more than this fraction of the best's magnitude
            (``value > best + tolerance·|best|`` for ``"min"``); an epoch in
            between neither improves nor counts, and breaks a streak.

    Example:
        >>> best = BestEpoch("val_loss", "min", 0.1)
        >>> best.better(0.4), best.better(float("nan"))
        (True, False)
    """

    def __init__(self, monitor: str, mode: str, tolerance: float) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(
                f"DivergenceGuard: monitor must be a field of the epoch record, 'auto' or "
                f"None, got {monitor!r}"
            )
        if mode not in ("min", "max"):
            raise ConfigError(f"DivergenceGuard: mode must be 'min' or 'max', got {mode!r}")
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, (int, float))
            or not (tolerance >= 0)
        ):
            raise ConfigError(
                f"DivergenceGuard: tolerance must be a number >= 0, got {tolerance!r}"
            )
        self.monitor, self.mode, self.tolerance = monitor, mode, float(tolerance)
        self.value: float | None = None
        self.epoch: int | None = None
        self.snapshot: Snapshot | None = None
        self.worse = 0  # epochs in a row worse than the best beyond the tolerance
        self.held = False  # whether the model holds the best epoch's weights now

    def reset(self) -> None:
        self.value, self.epoch, self.snapshot, self.worse = None, None, None, 0
        self.held = False

    def field(self, record: dict[str, Any]) -> str:
        """The record key this run monitors."""
        if self.monitor != AUTO:
            if self.monitor not in record:
                raise ConfigError(
                    f"DivergenceGuard: monitor={self.monitor!r} is not in the epoch record; "
                    f"it has {sorted(k for k in record if k not in ('type', 'epoch', 'step'))}"
                )
            return self.monitor
        return "val_loss" if "val_loss" in record else "train_loss"

    def better(self, value: float) -> bool:
        """Whether ``value`` improves on the best (a NaN never does)."""
        if not math.isfinite(value):
            return False
        if self.value is None:
            return True
        return value < self.value if self.mode == "min" else value > self.value

    def worse_than_best(self, value: float) -> bool:
        """Whether ``value`` is beyond the best by more than the tolerance (a NaN is not)."""
        if not math.isfinite(value) or self.value is None:
            return False
        slack = self.tolerance * abs(self.value)
        return value > self.value + slack if self.mode == "min" else value < self.value - slack

    def update(
        self, state: TrainState, losses: deque[float], layout: Layout | None = None
    ) -> float:
        """Read this epoch's value; keep a copy of the state if it is the best. Returns it."""
        value = float(state.metrics[self.field(state.metrics)])
        if not math.isfinite(value):
            # An epoch mean with a NaN batch in it: the NaN/spike rules saw that
            # batch and rolled it back; the epoch tells nothing about a trend.
            self.held = False
            return value
        self.held = self.better(value)
        if self.held:
            self.value, self.epoch, self.worse = value, state.epoch, 0
            # into the tensors of the previous best copy: no allocation
            self.snapshot = Snapshot.take(state, losses, reuse=self.snapshot, layout=layout)
        elif self.worse_than_best(value):
            self.worse += 1
        else:
            self.worse = 0
        return value

    def restore(
        self, state: TrainState, factor: float, last: bool = False, layout: Layout | None = None
    ) -> None:
        """Put the best epoch's state back, with ``factor`` times the lr the run has now.

        The best epoch's optimizer state carries the lr of that time; a spike
        rescue may have lowered it since. The restored rates are scaled (with
        :func:`scale_lr`, base rates of a scheduler included) so that they end
        at ``factor`` times the current ones, never back up. ``last``: the copy
        is dropped after (the end of ``fit``), so it is handed over, not copied.
        """
        if self.snapshot is None:
            raise RuntimeError("BestEpoch.restore: no epoch recorded yet")
        now = lr_level(state)
        self.snapshot.restore(state, last, layout)
        then = lr_level(state)
        scale_lr(state.optimizer, factor * now / then if then else factor, state.scheduler)
        self.worse, self.held = 0, True

    def state_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "epoch": self.epoch,
            "worse": self.worse,
            "held": self.held,
            "snapshot": None if self.snapshot is None else self.snapshot.as_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value, self.epoch, self.worse = state["value"], state["epoch"], int(state["worse"])
        self.held = bool(state["held"])
        snap = state["snapshot"]
        self.snapshot = None if snap is None else Snapshot(**snap)
