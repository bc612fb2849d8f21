"""Catch a diverging run, roll it back to the last good state, lower the lr, go on.

A learning rate a little too large rarely fails at once: the loss jumps, the
weights grow, and a few steps later the loss is ``inf`` or ``NaN`` and every
weight with it. Or it fails slowly: the loss oscillates and creeps upward
epoch after epoch without one step large enough to call a spike.
:class:`DivergenceGuard` keeps an in-memory copy of the training state every
few steps and of the best epoch so far and, when it sees the run fail, puts
a copy back with a smaller learning rate instead of letting the run end in
NaNs or at chance.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

from gradwise.errors import GradwiseError
from gradwise.optim import scale_lr
from gradwise.train._guard_checks import GradCheck as _GradCheck
from gradwise.train._guard_checks import check_args, spike_median
from gradwise.train._guard_layout import Layout
from gradwise.train._rollback import Snapshot
from gradwise.train._state import Callback, Control, TrainState
from gradwise.train._trend import AUTO, BestEpoch

MIN_HISTORY = 5
"""Losses the spike rule needs before it applies (the window may be larger);
the median of the first ones is the run's starting loss."""


class DivergenceError(GradwiseError, RuntimeError):
    """Training kept diverging after :class:`DivergenceGuard` used all its retries."""


class DivergenceGuard(Callback):
    """Roll back to the last good state and lower the lr when training diverges.

    Triggers (checked at every optimizer step):

    * a non-finite gradient: some gradient entry is NaN or inf, checked in
      ``on_before_step`` on the full (accumulated) gradients; that step is
      skipped, so the bad gradient never reaches the weights (``check_grads``);
    * a non-finite loss;
    * a loss spike, for ``patience`` steps in a row::

          loss_t > loss_factor · median(loss_{t-W}, ..., loss_{t-1})  and  loss_t > loss_start

      with ``W = window`` and ``loss_start`` the median of the run's first
      ``n0 = min(window, 5)`` step losses (the rule applies from step
      ``n0 + 1``): a run getting worse than the untrained model. Late in
      training batch losses are small and heavy-tailed, so a ratio alone
      fires in healthy runs; ``patience`` lets one unlucky batch pass;
    * a worsening trend (slow divergence), checked at every epoch end: the
      monitored field of the epoch record (``monitor``: ``val_loss`` when
      there is validation data, else the epoch's mean training loss, a
      smoothed training loss) has been worse than its best by more than
      ``tolerance`` (relative) for ``trend_patience`` epochs in a row::

          value_e > best + tolerance·|best|     (mode "min"; "max" mirrors it)

      This rescue restores the *best epoch's* state, not the last restore
      point, and its lr is ``factor`` times the lr the run has at that moment
      (a spike rescue since the best epoch is not undone).

    Rescue: the weights, optimizer state and scheduler state saved at the
    restore point are loaded back, every group's lr is multiplied by
    ``factor`` (and the scheduler's base rates, see :func:`scale_lr`, so the
    schedule does not undo it), and training goes on with the next batch;
    the step counter keeps counting. Each rescue emits a
    ``"divergence_rescue"`` event (``reason``, ``loss``, ``old_lr``,
    ``new_lr`` of the first group, ``restored_step``, ``retry``), which
    :class:`MetricsLogger` writes to ``metrics.jsonl`` and the report lists.
    After ``max_retries`` rescues in one run, the next trigger puts the last
    good weights back and raises :class:`DivergenceError`; a trend trigger
    then instead puts the best epoch's state back and stops training (event
    ``"divergence_stop"``): the best weights are a result, not a failure.

    The end: with the trend rule on, a guarded run ends with the weights of
    its best epoch. If the last epoch was not the best, ``on_fit_end`` loads
    the best epoch's state back; either way it emits a ``"best_weights"``
    event (``epoch``, ``monitor``, ``value``, ``last_value``, ``restored``)
    saying which epoch's weights the model holds.

    Restore point: at the end of every ``snapshot_every``-th step the guard
    copies the state in memory; the copy becomes the restore point once the
    next step's loss, computed from those very weights, passes the checks
    without even nearing a spike (a copy taken just before a failure, or in
    the middle of a jump, is never used). The state at the start of ``fit`` is
    the first restore point. Memory: two copies of the weights and optimizer
    state (restore point and next copy; a copy is written in place into the
    one it replaces), a third for the best epoch, and this guard's state in
    checkpoints, so that a resumed run rolls back as the original would.

    Cost per step: one multi-tensor pass over the gradients, two host reads
    (its flag, the loss; the spike rule's median only for a loss above the
    starting loss), and every ``snapshot_every`` steps an in-place copy of the
    state: one multi-tensor copy of the live tensors, found once per fit, with
    no ``state_dict()`` walk (restores too are in place). The trend rule adds
    nothing per step: per epoch, one read of the epoch record and, in an epoch
    that improves on the best, one such copy.

    Args:
        snapshot_every: optimizer steps between copies of the state (>= 1).
        factor: lr multiplier applied at each rescue, in (0, 1).
        max_retries: rescues allowed in one run (>= 0; 0 raises at the first
            trigger, after restoring the last good weights).
        loss_factor: spike threshold ``k`` (> 1), or None to check only for
            non-finite values.
        window: number ``W`` of recent step losses whose median is the reference.
        patience: consecutive steps above the threshold that count as a spike.
        check_grads: check the gradients before each step (skipping a bad step).
        monitor: the epoch-record field the trend rule watches (``"val_loss"``,
            ``"val_accuracy"``, ...), ``"auto"`` (``val_loss``, else
            ``train_loss``), or None to turn the trend rule and the final
            restore of the best weights off.
        mode: ``"min"`` if lower values of ``monitor`` are better, ``"max"`` if higher.
        trend_patience: epochs in a row without improving on the best that
            trigger the trend rule (>= 1).
        tolerance: an epoch counts as worse than the best only beyond it by
            more than this fraction of the best's magnitude (>= 0); epochs
            within it neither improve nor count, and break a streak.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from gradwise.train import Trainer
        >>> model = nn.Linear(4, 1)
        >>> X, y = torch.randn(64, 4), torch.randn(64, 1)
        >>> guard = DivergenceGuard(snapshot_every=2, max_retries=5)
        >>> t = Trainer(model, torch.optim.SGD(model.parameters(), lr=50.0), nn.MSELoss(),
        ...             epochs=5, batch_size=16, seed=0, callbacks=[guard])
        >>> h = t.fit((X, y))
        >>> guard.retries > 0 and t.optimizer.param_groups[0]["lr"] < 50.0
        True
    """

    order = -50  # before other callbacks, so that they see the state after a rescue

    def __init__(
        self,
        snapshot_every: int = 50,
        factor: float = 0.5,
        max_retries: int = 5,
        loss_factor: float | None = 2.0,
        window: int = 50,
        patience: int = 2,
        check_grads: bool = True,
        monitor: str | None = AUTO,
        mode: str = "min",
        trend_patience: int = 2,
        tolerance: float = 0.1,
    ) -> None:
        check_args(
            snapshot_every=snapshot_every, max_retries=max_retries, window=window,
            patience=patience, trend_patience=trend_patience, factor=factor,
            loss_factor=loss_factor, check_grads=check_grads,
        )  # fmt: skip
        self.snapshot_every, self.max_retries = snapshot_every, max_retries
        self.factor = float(factor)
        self.loss_factor = None if loss_factor is None else float(loss_factor)
        self.window, self.patience, self.check_grads = window, patience, check_grads
        self.retries, self.trend_patience = 0, trend_patience
        self._losses: deque[float] = deque(maxlen=window)
        self._start: float | None = None
        self._streak, self._bad_grad = 0, False
        self._good: Snapshot | None = None
        self._pending: Snapshot | None = None
        self._spare: Snapshot | None = None  # a copy no longer needed: the next one reuses it
        self._check: _GradCheck | None = None
        self._layout: Layout | None = None  # the live tensors the copies go through
        self._best = None if monitor is None else BestEpoch(monitor, mode, tolerance)

    # -- events ------------------------------------------------------------------

    def on_fit_start(self, state: TrainState) -> None:
        self._layout = Layout(state.model, state.optimizer)
        params = [p for g in state.optimizer.param_groups for p in g["params"]]
        self._check = _GradCheck(params) if self.check_grads else None
        self._bad_grad = False
        if state.resumed and self._good is not None:
            return  # load_state_dict brought the restore point of the checkpoint
        self.retries, self._streak, self._start = 0, 0, None
        self._drop_pending()
        self._losses.clear()
        if self._best is not None:
            self._best.reset()
        layout = self._layout if state.optimizer.state else None  # a first step changes it
        self._good, self._spare = Snapshot.take(state, self._losses, self._spare, layout), None

    def on_before_step(self, state: TrainState) -> Control | None:
        if self._check is None or self._check.grads_finite():
            return None
        self._bad_grad = True
        return Control(skip_step=True)  # on_step_end rolls back

    def on_step_end(self, state: TrainState) -> Control | None:
        if state.loss is None:
            return None
        loss = float(state.loss)
        top = math.inf if self._start is None else self._start  # NaN fails both tests:
        if self._bad_grad or not -math.inf < loss < top:  # below the start no rule fires
            reason = self._trigger(loss)
            if reason is not None:
                return self._rescue(state, reason, loss)
        else:
            self._streak = 0
        self._losses.append(loss)
        if self._start is None and len(self._losses) >= min(self.window, MIN_HISTORY):
            self._start = statistics.median(self._losses)
        if self._streak:
            # A suspicious step: its weights and the copy it was meant to
            # confirm do not become restore points.
            self._drop_pending()
            return None
        if self._pending is not None:
            self._spare, self._good, self._pending = self._good, self._pending, None
        if state.step % self.snapshot_every == 0:
            self._pending = Snapshot.take(state, self._losses, self._spare, self._layout)
            self._spare = None
        return None

    def on_epoch_end(self, state: TrainState) -> Control | None:
        best = self._best
        if best is None:
            return None
        value = best.update(state, self._losses, self._layout)
        if best.worse < self.trend_patience:
            return None
        field = best.field(state.metrics)
        reason = (
            f"{field} {value:.4g} worse than its best {best.value:.4g} (epoch {best.epoch}) "
            f"by more than {best.tolerance:g}x for {best.worse} epochs in a row"
        )
        return self._trend_rescue(state, reason, value)

    def on_fit_end(self, state: TrainState) -> Control | None:
        best, ctl = self._best, None
        if best is not None and best.snapshot is not None:
            field = best.field(state.metrics)
            last = float(state.metrics[field])
            restored = not best.held
            if restored:
                best.restore(state, 1.0, True, self._layout)  # best epoch's weights, lr of now
            where = (
                f"the weights of epoch {best.epoch}, its best by {field} ({best.value:.4g}); "
                f"the last epoch had {last:.4g}" + ("; loaded back at the end" if restored else "")
            )
            ctl = Control.emit(
                "best_weights",
                f"the model holds {where}",
                epoch=best.epoch,
                monitor=field,
                value=best.value,
                last_value=last,
                restored=restored,
            )
        self._release()
        return ctl

    def on_exception(self, state: TrainState, exc: BaseException) -> None:
        self._release()

    # -- rules and rescue ------------------------------------------------------------

    def _trigger(self, loss: float) -> str | None:
        """Why this step failed, or None; counts the spike streak."""
        if self._bad_grad:
            self._bad_grad = False
            return "non-finite gradient (NaN or inf)"
        if not math.isfinite(loss):
            return f"non-finite loss ({loss})"
        need = min(self.window, MIN_HISTORY)
        if self.loss_factor is None or self._start is None or len(self._losses) < need:
            return None  # after a rescue the window may hold fewer losses again
        median = spike_median(loss, self._losses, self._start, self.loss_factor)
        if median is None:
            self._streak = 0
            return None
        self._streak += 1
        if self._streak < self.patience:
            return None
        run = f", {self._streak} steps in a row" if self._streak > 1 else ""
        return (
            f"loss {loss:.4g} > {self.loss_factor:g} x median {median:.4g} of the last "
            f"{len(self._losses)} losses and > starting loss {self._start:.4g}{run}"
        )

    def _rescue(self, state: TrainState, reason: str, loss: float) -> Control:
        good = self._good
        if good is None:  # on_fit_start sets one; only a call outside fit gets here
            raise RuntimeError("DivergenceGuard: no restore point; it runs inside Trainer.fit")
        old_lr = float(state.optimizer.param_groups[0]["lr"])
        good.restore(state, layout=self._layout)
        self._losses = deque(good.losses, maxlen=self.window)
        self._streak = 0
        self._drop_pending()
        if self.retries >= self.max_retries:
            raise DivergenceError(
                f"DivergenceGuard: training diverged at step {state.step}: {reason}. Gave up "
                f"after {self.retries} rescue(s) (max_retries={self.max_retries}); last loss "
                f"{loss:.6g}; the model holds the weights of step {good.step} again (lr "
                f"{float(state.optimizer.param_groups[0]['lr']):.3g}). Lower the learning rate "
                "(gradwise.schedules.lr_find suggests one), clip gradients (clip_grad_norm), "
                "or allow more retries"
            )
        self.retries += 1
        scale_lr(state.optimizer, self.factor, state.scheduler)
        new_lr = float(state.optimizer.param_groups[0]["lr"])
        # The same weights with the lowered lr: a later rescue from here lowers it again.
        restored = good.step
        self._good = Snapshot.take(state, self._losses, good, self._layout)  # into its memory
        self._good.step = restored
        return Control.emit(
            "divergence_rescue",
            f"step {state.step}: {reason}; restored step {restored}, "
            f"lr {old_lr:.3g} -> {new_lr:.3g} (rescue {self.retries} of {self.max_retries})",
            reason=reason,
            loss=loss,
            old_lr=old_lr,
            new_lr=new_lr,
            restored_step=restored,
            retry=self.retries,
        )

    def _trend_rescue(self, state: TrainState, reason: str, value: float) -> Control:
        best = self._best
        if best is None or best.snapshot is None:  # on_epoch_end only calls it after an update
            raise RuntimeError("DivergenceGuard: no best epoch to restore")
        old_lr = float(state.optimizer.param_groups[0]["lr"])
        give_up = self.retries >= self.max_retries
        best.restore(state, 1.0 if give_up else self.factor, layout=self._layout)
        self._losses = deque(best.snapshot.losses, maxlen=self.window)
        self._streak = 0
        self._drop_pending()
        self._good = Snapshot.take(state, self._losses, self._good, self._layout)
        self._good.step = best.snapshot.step
        new_lr = float(state.optimizer.param_groups[0]["lr"])
        data = dict(
            reason=reason,
            loss=value,
            old_lr=old_lr,
            new_lr=new_lr,
            restored_step=best.snapshot.step,
            restored_epoch=best.epoch,
        )
        if give_up:
            return Control.emit(
                "divergence_stop",
                f"epoch {state.epoch}: {reason}; restored epoch {best.epoch} and stopped after "
                f"{self.retries} rescue(s) (max_retries={self.max_retries})",
                stop=True,
                retry=self.retries,
                **data,
            )
        self.retries += 1
        return Control.emit(
            "divergence_rescue",
            f"epoch {state.epoch}: {reason}; restored epoch {best.epoch} (step "
            f"{best.snapshot.step}), lr {old_lr:.3g} -> {new_lr:.3g} (rescue {self.retries} of "
            f"{self.max_retries})",
            retry=self.retries,
            **data,
        )

    def _drop_pending(self) -> None:
        if self._pending is not None:
            self._spare, self._pending = self._pending, None

    def _release(self) -> None:
        # The copies can be as large as the model and its optimizer state.
        self._good = self._pending = self._spare = None
        if self._best is not None:
            self._best.snapshot = None
        self._check, self._layout = None, None

    # -- checkpoints -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "retries": self.retries,
            "losses": list(self._losses),
            "start": self._start,
            "streak": self._streak,
            "good": None if self._good is None else self._good.as_dict(),
            "pending": None if self._pending is None else self._pending.as_dict(),
            "best": None if self._best is None else self._best.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.retries, self._streak = int(state["retries"]), int(state["streak"])
        self._losses = deque((float(v) for v in state["losses"]), maxlen=self.window)
        self._start = state["start"]
        self._good = None if state["good"] is None else Snapshot(**state["good"])
        self._pending = None if state["pending"] is None else Snapshot(**state["pending"])
        self._spare = None
        if self._best is not None and state.get("best") is not None:
            self._best.load_state_dict(state["best"])
