"""Stop training when a monitored value stops improving; optionally keep the best weights."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gradwise.errors import ConfigError
from gradwise.train._monitor import Monitor
from gradwise.train._state import Callback, Control, TrainState


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without improvement of ``monitor``.

    An epoch improves when its value beats the best so far by more than
    ``min_delta`` (``v < best − min_delta`` for ``"min"``, ``v > best +
    min_delta`` for ``"max"``). After ``patience`` epochs in a row without
    improvement it stops training and emits an ``"early_stop"`` event. With
    ``restore_best`` it keeps a copy of the weights of the best epoch and loads
    them into the model when ``fit`` ends (emitting ``"restore_best"``), so the
    trained model is the best one seen, not the last.

    Args:
        monitor: an epoch-record key: ``"val_loss"``, ``"val_accuracy"``, ``"train_loss"``...
        mode: ``"min"``, ``"max"`` or ``"auto"`` (losses, mse and mae go down;
            accuracy and r2 go up).
        patience: epochs without improvement before stopping (>= 1).
        min_delta: the smallest change that counts as an improvement (>= 0).
        restore_best: load the best epoch's weights at the end of ``fit``.

    Example:
        >>> es = EarlyStopping("val_accuracy", patience=5)
        >>> es.monitor.mode
        'max'
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "auto",
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"EarlyStopping: patience must be an int >= 1, got {patience!r}")
        self.monitor = Monitor(monitor, mode, "EarlyStopping", min_delta)
        self.patience, self.restore_best = patience, restore_best
        self.wait = 0
        self.best_weights: dict[str, Tensor] | None = None

    def on_epoch_end(self, state: TrainState) -> Control | None:
        m = self.monitor
        if m.update(state.metrics):
            self.wait = 0
            if self.restore_best:
                self.best_weights = {
                    k: v.detach().clone() for k, v in state.model.state_dict().items()
                }
            return None
        self.wait += 1
        if self.wait < self.patience:
            return None
        return Control.emit(
            "early_stop",
            f"{m.key} did not improve for {self.wait} epochs; best {m.value:.6g} at epoch {m.epoch}",
            stop=True,
            monitor=m.key,
            best=m.value,
            best_epoch=m.epoch,
        )

    def on_fit_end(self, state: TrainState) -> Control | None:
        last = state.history[-1]["epoch"] if state.history else None
        if not self.restore_best or self.best_weights is None or self.monitor.epoch == last:
            return None
        state.model.load_state_dict(self.best_weights)
        m = self.monitor
        message = f"restored the weights of epoch {m.epoch} ({m.key}={m.value:.6g})"
        # a divergence guard that kept another epoch by its own monitor has just said so
        guard = next((ev for ev in reversed(state.events) if ev.get("kind") == "best_weights"
                      and ev.get("step") == state.step), None)  # fmt: skip
        if guard is not None and guard.get("epoch") != m.epoch:
            message += (
                f", the best by early stopping's {m.key}; they replace the guard's epoch "
                f"{guard['epoch']} (best by {guard.get('monitor')}): the model ends with "
                f"epoch {m.epoch}'s weights"
            )
        return Control.emit("restore_best", message, best_epoch=m.epoch)

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor.state(),
            "wait": self.wait,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.monitor.load(state["monitor"])
        self.wait = state["wait"]
        self.best_weights = state["best_weights"]
