"""What one run saves to continue bit for bit, and how it continues from it.

:func:`snapshot` is everything a :class:`~gradwise.train._loop.Run` needs to
go on exactly where it was (weights, optimizer and scheduler state, position,
RNG states at the epoch start and at the step, the epoch's running sums,
history, events, callback states); :func:`restore` loads one back, and
:func:`resume` finds, reads, reshards (FSDP) and restores the checkpoint that
``Trainer.fit(resume=...)`` names. The :class:`Checkpoint` callback writes
snapshots; the loop itself only calls these functions.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradwise.errors import CheckpointError
from gradwise.train import _distributed
from gradwise.train._checkpoint import FORMAT, load_checkpoint, resolve_checkpoint
from gradwise.train._dcp import load_sharded
from gradwise.train.metrics import Metric

if TYPE_CHECKING:
    from gradwise.train._loop import Run


def callback_keys(callbacks: Iterable[Any]) -> list[str]:
    """Stable names for callback states in a checkpoint: class name, numbered on repeats."""
    keys: list[str] = []
    seen: dict[str, int] = {}
    for cb in callbacks:
        name = type(cb).__name__
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return keys


def snapshot(run: Run) -> dict[str, Any]:
    """Everything needed to continue bit for bit (see ``TrainState.snapshot``)."""
    s = run.state
    return {
        "format": FORMAT,
        "model": s.model.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "scheduler": None if s.scheduler is None else s.scheduler.state_dict(),
        "position": {
            "epoch": s.epoch,
            "step": s.step,
            "batch_in_epoch": s.batch_in_epoch,
            "batches": s.batches,
            "epoch_done": run.epoch_done,
            "last_lr": s.last_lr,
        },
        "stopped": run.stop,  # a callback (early stopping) ended the run here
        "rng": run.rng_state(),
        "rng_epoch_start": run.epoch_rng,
        "epoch_sums": {
            "loss_sum": None if run.loss_sum is None else run.loss_sum.clone(),
            "count": run.count,
            "elapsed": run.elapsed,
            "metrics": [_metric_state(m) for m in run.train_metrics],
        },
        **_rank_marker(run),
        "loss": s.loss,
        "history": [dict(r) for r in s.history],
        "events": [dict(e) for e in s.events],
        "callbacks": {
            key: cb.state_dict() if hasattr(cb, "state_dict") else {}
            for key, cb in zip(callback_keys(run.callbacks), run.callbacks)
        },
    }


def _rank_marker(run: Run) -> dict[str, Any]:
    # Under DDP the Checkpoint callback gathers every rank's RNGs and sums.
    if run.dist is None:
        return {}
    return {"distributed": {"rank": run.dist.rank, "world_size": run.dist.world}}


def restore(run: Run, ckpt: dict[str, Any]) -> None:
    """Load a snapshot (already read and checked by ``load_checkpoint``) into ``run``."""
    s = run.state
    s.model.load_state_dict(ckpt["model"])
    s.optimizer.load_state_dict(ckpt["optimizer"])
    if s.scheduler is not None and ckpt["scheduler"] is not None:
        s.scheduler.load_state_dict(ckpt["scheduler"])
    pos = ckpt["position"]
    s.epoch, s.step = pos["epoch"], pos["step"]
    s.batch_in_epoch, s.batches = pos["batch_in_epoch"], pos["batches"]
    s.last_lr = pos["last_lr"]
    s.loss = None if ckpt["loss"] is None else ckpt["loss"].to(s.device)
    s.history[:] = ckpt["history"]
    s.metrics = dict(s.history[-1]) if s.history else {}
    s.resumed = True
    s.events[:] = ckpt["events"]
    saved = ckpt["callbacks"]
    for key, cb in zip(callback_keys(run.callbacks), run.callbacks):
        if saved.get(key) and hasattr(cb, "load_state_dict"):
            cb.load_state_dict(saved[key])
    run.epoch_done = pos["epoch_done"]
    run.stop = bool(ckpt.get("stopped", False))  # resuming a stopped run trains no more
    if run.epoch_done:
        run.set_rng(ckpt["rng"])
        return
    sums = ckpt["epoch_sums"]
    run.loss_sum = None if sums["loss_sum"] is None else sums["loss_sum"].to(s.device)
    run.count, run.elapsed = sums["count"], sums["elapsed"]
    for m, ms in zip(run.train_metrics, sums["metrics"]):
        m.reset()
        load = getattr(m, "load_state_dict", None)  # saved by metrics with a state_dict
        if ms is not None and load is not None:
            load({**ms, "sums": {k: v.to(s.device) for k, v in ms["sums"].items()}})
    run.epoch_rng, run.resume_rng = ckpt["rng_epoch_start"], ckpt["rng"]


def resume(run: Run, where: Any, dist: Any = None) -> Path:
    """Restore ``run`` from the checkpoint ``where`` names (a file, or a directory's latest).

    Under DDP/FSDP every rank reads its own part (FSDP's DCP shards are
    resharded to this run's world size). Returns the checkpoint's path.
    """
    path = resolve_checkpoint(where) if dist is None else dist.resolve(where, resolve_checkpoint)
    ckpt = load_checkpoint(path)
    rank, world = (0, 1) if dist is None else (dist.rank, dist.world)
    ckpt = _distributed.for_rank(ckpt, path, rank, world)
    s = run.state
    try:
        if ckpt.get("sharded"):  # FSDP's DCP shards, resharded to this run
            ckpt["model"], ckpt["optimizer"] = load_sharded(path, s.model, s.optimizer)
        restore(run, ckpt)
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this model/optimizer: {exc}"
        ) from exc
    return path


def _metric_state(m: Metric) -> dict[str, Any] | None:
    get = getattr(m, "state_dict", None)
    return copy.copy(get()) if get is not None else None
