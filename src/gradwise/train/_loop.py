"""One ``fit`` call: the epoch/batch/step loop and event dispatch.

Kept apart from :class:`Trainer` so that the trainer holds configuration and
this module holds the state of one run; what a run saves and loads back is in
``_resume``, the passes in eval mode in ``_eval``. The batch loop is the hot path: it
touches callbacks only when some callback handles the event, reads no number
back from the device, and keeps the epoch's loss sum as a device tensor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from gradwise.train import _resume
from gradwise.train._data import Batch, LoaderBatches, TensorBatches
from gradwise.train._eval import run_eval
from gradwise.train._rng import capture_rng, restore_rng
from gradwise.train._state import EVENTS, Callback, Control, History, TrainState
from gradwise.train.metrics import Metric


def _handles(cb: Any, event: str) -> bool:
    method = getattr(type(cb), event, None)
    if method is None:
        return False
    return not (isinstance(cb, Callback) and method is getattr(Callback, event))


class Run:
    """The state of one ``Trainer.fit`` call."""

    def __init__(
        self,
        *,
        state: TrainState,
        loss_fn: Callable[[Any, Any], Tensor],
        train: TensorBatches | LoaderBatches,
        val: TensorBatches | LoaderBatches | None,
        train_metrics: list[Metric],
        val_metrics: list[Metric],
        callbacks: list[Any],
        generator: torch.Generator,
        grad_accum: int,
        clip_grad_norm: float | None,
        scheduler_per: str,
        amp: Callable[[], Any],
        dist: Any = None,
    ) -> None:
        self.state, self.loss_fn = state, loss_fn
        self.train, self.val = train, val
        self.train_metrics, self.val_metrics = train_metrics, val_metrics
        self.callbacks, self.generator = callbacks, generator
        self.grad_accum, self.clip, self.scheduler_per = grad_accum, clip_grad_norm, scheduler_per
        self.amp = amp
        # Under DDP: the process group, and the DistributedDataParallel wrapper
        # that the forward pass goes through (state.model stays the bare module).
        self.dist, self.ddp = dist, None
        self.hooks = {
            ev: [getattr(cb, ev) for cb in callbacks if _handles(cb, ev)] for ev in EVENTS
        }
        self.params = list(state.model.parameters())
        # A user's DataLoader may shuffle with its own generator: resume must rewind it too.
        loader = train.loader if isinstance(train, LoaderBatches) else None
        self.loader_gen: torch.Generator | None = getattr(loader, "generator", None)
        self.stop = self.skip = False
        self.epoch_done = True  # no epoch in progress
        self.epoch_rng: dict[str, Any] | None = None
        self.resume_rng: dict[str, Any] | None = None
        self.loss_sum: Tensor | None = None
        self.count = 0
        self.elapsed = 0.0
        state._snapshot = self.snapshot

    # -- events ----------------------------------------------------------------

    def fire(self, event: str, *args: Any) -> None:
        for fn in self.hooks[event]:
            self._apply(fn(self.state, *args), event, fn)

    def _apply(self, ctl: Any, event: str, fn: Any) -> None:
        if ctl is None:
            return
        if isinstance(ctl, dict):
            ctl = Control(**ctl)
        if not isinstance(ctl, Control):
            owner = type(getattr(fn, "__self__", fn)).__name__
            raise TypeError(
                f"callback {owner}.{event} returned {type(ctl).__name__}; "
                "return a Control, a dict of Control fields, or None"
            )
        self.stop |= ctl.stop
        self.skip |= ctl.skip_step
        for ev in ctl.events:
            self.emit(ev)

    def emit(self, event: dict[str, Any]) -> None:
        """Stamp an event record with type/epoch/step, keep it, and pass it to ``on_event``."""
        s = self.state
        record = {"type": "event", "epoch": s.epoch, "step": s.step, **event}
        record.setdefault("message", "")
        s.events.append(record)
        self.fire("on_event", record)

    # -- the loop ----------------------------------------------------------------

    def fit(self, resumed_from: str | None = None) -> History:
        s = self.state
        try:
            self.fire("on_fit_start")
            if resumed_from is not None:
                self.emit(
                    {
                        "kind": "resume",
                        "message": f"resumed from {resumed_from} at epoch {s.epoch}, "
                        f"step {s.step}, batch {s.batch_in_epoch}",
                        "path": resumed_from,
                    }
                )
            while not self.stop and (s.epoch < s.epochs or not self.epoch_done):
                t0 = time.perf_counter()
                self._train_batches(self._start_epoch())
                self._end_epoch(t0)
        except BaseException as exc:
            for fn in self.hooks["on_exception"]:
                fn(s, exc)
            raise
        self.fire("on_fit_end")
        return History(s.history, s.events)

    def rng_state(self) -> dict[str, Any]:
        return {
            "global": capture_rng(),
            "shuffle": self.generator.get_state(),
            "loader": None if self.loader_gen is None else self.loader_gen.get_state(),
        }

    def set_rng(self, rng: dict[str, Any]) -> None:
        restore_rng(rng["global"])
        self.generator.set_state(rng["shuffle"])
        if self.loader_gen is not None and rng.get("loader") is not None:
            self.loader_gen.set_state(rng["loader"])

    def _start_epoch(self) -> Iterator[Batch]:
        s = self.state
        if self.epoch_done:
            s.epoch += 1
            s.batch_in_epoch, self.count, self.elapsed = 0, 0, 0.0
            # Σ loss_b·n_b accumulates on the device in float64: no host sync per batch.
            self.loss_sum = torch.zeros((), dtype=torch.float64, device=s.device)
            for m in self.train_metrics:
                m.reset()
            self.epoch_done = False
            self.epoch_rng = self.rng_state()
            if self.dist is not None:
                self.dist.set_epoch(self.train, s.epoch)
            batches = self.train.epoch(self.generator)
            self.fire("on_epoch_start")
            return batches
        # Resuming mid-epoch: rewind every generator to the epoch start so the
        # loader draws the same shuffle, skip the batches already done, then
        # jump to the generators' state at the moment of the checkpoint.
        self.set_rng(self.epoch_rng)
        if self.dist is not None:
            self.dist.set_epoch(self.train, s.epoch)
        batches = self.train.epoch(self.generator)
        self.fire("on_epoch_start")
        for _ in range(s.batch_in_epoch):
            next(batches, None)
        self.set_rng(self.resume_rng)
        return batches

    def _train_batches(self, batches: Iterator[Batch]) -> None:
        s, model, loss_fn = self.state, self.state.model, self.loss_fn
        model.train()
        ddp = self.ddp
        if ddp is not None:
            model = ddp
        accum, nb = self.grad_accum, s.batches_per_epoch
        # Batches of the last accumulation group, which may be short: its loss
        # is divided by its own size so that it, too, is a mean over its batches.
        full = None if nb is None else (nb // accum) * accum
        on_batch_start, on_after_backward = (
            self.hooks["on_batch_start"],
            self.hooks["on_after_backward"],
        )
        amp, metrics = self.amp, self.train_metrics
        pending, group_loss = 0, None
        for inputs, target in batches:
            b = s.batch_in_epoch
            if on_batch_start:
                self.fire("on_batch_start")
            k = accum if full is None or b < full else nb - full
            if ddp is not None:
                # DDP averages gradients across ranks in the last backward of a
                # group only (what its no_sync() context sets).
                ddp.require_backward_grad_sync = pending + 1 == k
            with amp():
                out = model(*inputs)
                loss = loss_fn(out, target)
            (loss / k if k != 1 else loss).backward()
            pending += 1
            ld = loss.detach()
            n = len(target)
            self.loss_sum.add_(ld, alpha=n)
            self.count += n
            group_loss = ld if k == 1 else (ld / k if group_loss is None else group_loss + ld / k)
            if metrics:
                out_d = out.detach()
                for m in metrics:
                    m.update(out_d, target)
            s.batch_in_epoch = b + 1
            s.batches += 1
            if on_after_backward:
                self.fire("on_after_backward")
            if pending == k:
                self._step(group_loss)
                pending, group_loss = 0, None
            if self.stop:
                break
        if pending:  # an iterable without a length ended inside a group, or a stop did
            if self.stop:
                s.optimizer.zero_grad(set_to_none=True)
            else:
                if ddp is not None:
                    self.dist.average_gradients(self.params)
                self._step(group_loss)

    def _step(self, group_loss: Tensor) -> None:
        s = self.state
        mean = None if self.dist is None else self.dist.start_mean(group_loss)
        if self.hooks["on_before_step"]:
            self.fire("on_before_step")
        s.last_lr = s.optimizer.param_groups[0]["lr"]
        if self.skip:
            self.skip = False
        else:
            if self.clip is not None:
                s.grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip)
            s.optimizer.step()
            if s.scheduler is not None and self.scheduler_per == "step":
                s.scheduler.step()
        s.optimizer.zero_grad(set_to_none=True)
        s.step += 1
        s.loss = group_loss if mean is None else mean.wait()  # the mean over ranks under DDP
        if self.hooks["on_step_end"]:
            self.fire("on_step_end")

    def _end_epoch(self, t0: float) -> None:
        s = self.state
        record: dict[str, Any] = {"type": "epoch", "epoch": s.epoch, "step": s.step}
        record["batches"] = s.batches
        if self.dist is None:
            n = self.count
            record["train_loss"] = float(self.loss_sum) / n if n else float("nan")
            record.update({f"train_{m.name}": m.compute() for m in self.train_metrics})
        else:
            loss, values = self.dist.totals(self.loss_sum, self.count, self.train_metrics)
            record["train_loss"] = loss
            record.update({f"train_{k}": v for k, v in values.items()})
        if self.val is not None:
            result = run_eval(
                s.model, self.loss_fn, self.val, self.val_metrics, self.amp, self.dist
            )
            record.update({f"val_{k}": v for k, v in result.items()})
        record["lr"] = float(s.last_lr if s.last_lr is not None else s.lr[0])
        record["epoch_time"] = self.elapsed + time.perf_counter() - t0
        s.metrics = record
        s.history.append(record)
        self.epoch_done = True
        if s.scheduler is not None and self.scheduler_per == "epoch":
            if isinstance(s.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                s.scheduler.step(record.get("val_loss", record["train_loss"]))
            else:
                s.scheduler.step()
        if self.val is not None:
            self.fire("on_validation_end")
        self.fire("on_epoch_end")

    # -- snapshot / resume (see gradwise.train._resume) ------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (see ``TrainState.snapshot``)."""
        return _resume.snapshot(self)

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Load a snapshot (already read and checked by ``load_checkpoint``)."""
        _resume.restore(self, ckpt)
