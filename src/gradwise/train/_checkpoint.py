"""Checkpoint files: atomic writes, safe loads, and the ``Checkpoint`` callback.

A checkpoint is ``TrainState.snapshot()`` saved with ``torch.save``: state
dicts, RNG states as tensors and plain Python values, so ``torch.load(path,
weights_only=True)`` reads it without unpickling arbitrary objects. Under FSDP
it is a directory of DCP shards plus that snapshot's other entries (see
:mod:`gradwise.train._dcp`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from gradwise.errors import CheckpointError, ConfigError
from gradwise.train._dcp import META, is_sharded_checkpoint, save_sharded
from gradwise.train._distributed import share_ranks
from gradwise.train._fsdp import is_sharded
from gradwise.train._io import atomic_write, write_text
from gradwise.train._monitor import Monitor
from gradwise.train._state import Callback, Control, TrainState

FORMAT = "gradwise.train/1"
REQUIRED = (
    "model", "optimizer", "scheduler", "position", "rng", "rng_epoch_start",
    "epoch_sums", "loss", "history", "events", "callbacks",
)  # fmt: skip
LATEST = "latest"


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically; returns the path.

    The bytes go to a temporary file in the same directory, are flushed and
    fsynced, and only then renamed over ``path``. A crash mid-write leaves the
    previous file intact and no partial file under the final name.

    Example:
        >>> # save_checkpoint("runs/a/step-00000100.pt", state.snapshot())
    """
    return atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True`` onto the CPU.

    For a sharded checkpoint directory this reads its ``meta.pt``: the
    snapshot with ``"sharded": True`` and ``model``/``optimizer`` None, whose
    states ``Trainer.fit`` then loads with DCP.

    Raises:
        CheckpointError: naming the file when it is missing, truncated, not a
            torch file, or not a gradwise training checkpoint.
    """
    path = Path(path)
    if is_sharded_checkpoint(path):
        path = path / META
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, unpickling and EOF errors all mean: unreadable
        raise CheckpointError(
            f"checkpoint file {str(path)!r} is corrupt or not a torch checkpoint: {exc}"
            + _intact_hint(path)
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a gradwise training checkpoint "
            f"(expected format {FORMAT!r}); model weights alone load with torch.load"
        )
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} lacks {', '.join(missing)}")
    return ckpt


def _intact_hint(bad: Path) -> str:
    """Where to resume instead of a corrupt file: the newest intact checkpoint beside it."""
    others = [p for p in bad.parent.glob("*.pt") if p != bad and p.name != "best.pt"]
    others.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for i, other in enumerate(others):
        try:
            ckpt = torch.load(other, map_location="cpu", weights_only=True)
        except Exception:  # unreadable too: try the next older one
            continue
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            continue
        if i == 0:  # what resuming from the directory picks once the bad file is gone
            return f"; the newest intact checkpoint is {str(other)!r}: delete the corrupt file to resume from it"
        return f"; the newest intact checkpoint is {str(other)!r}: resume from that file"
    return "; no intact checkpoint is beside it" if others else ""


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file as given, or the latest one in a directory.

    In a directory the ``latest`` file written by :class:`Checkpoint` names
    it; without one, the most recently modified ``*.pt`` (or sharded checkpoint
    directory) other than ``best``.
    """
    path = Path(path)
    if is_sharded_checkpoint(path):
        return path
    if not path.is_dir():
        if not path.exists():
            raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
        return path
    pointer = path / LATEST
    if pointer.is_file():
        name = pointer.read_text().strip()
        if (path / name).is_file() or is_sharded_checkpoint(path / name):
            return path / name
    files = [p for p in path.glob("*.pt") if p.name != "best.pt"]
    files += [p for p in path.glob("[!.]*") if p.name != "best" and is_sharded_checkpoint(p)]
    if not files:
        raise CheckpointError(f"no checkpoint (*.pt) in directory {str(path)!r}")
    return max(files, key=lambda p: p.stat().st_mtime_ns)


class Checkpoint(Callback):
    """Save resumable checkpoints during training.

    Files in ``dir``: ``step-00000100.pt`` every ``every_n_steps`` optimizer
    steps, ``epoch-0003.pt`` at the end of each epoch, ``best.pt`` whenever
    the monitored value improves, and ``latest`` naming the newest rolling
    checkpoint (what ``Trainer.fit(resume=dir)`` loads). Only the ``keep``
    newest rolling checkpoints stay on disk. Each save emits a
    ``"checkpoint"`` event. Under ``torchrun`` the callback runs on every
    process (each adds its RNG states and running sums to the file) and only
    rank 0 writes. Under FSDP each checkpoint is a directory of DCP shards
    (``step-00000100/``, ``best/``) that every rank writes its part of.

    Args:
        dir: output directory (created).
        every_n_steps: save every that many optimizer steps (mid-epoch).
        every_epoch: save at the end of every epoch.
        keep: rolling checkpoints to keep (>= 1); ``best.pt`` is kept apart.
        save_best: epoch-record key to monitor (e.g. ``"val_loss"``), or None.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the metric name).

    Example:
        >>> # Trainer(..., callbacks=[Checkpoint("runs/a/ckpt", every_n_steps=100)])
        >>> # Trainer(...).fit(train, resume="runs/a/ckpt")
    """

    order = 100  # after the other callbacks, so their state of this event is saved

    def __init__(
        self,
        dir: str | os.PathLike,
        every_n_steps: int | None = None,
        every_epoch: bool = True,
        keep: int = 2,
        save_best: str | None = None,
        mode: str = "auto",
    ) -> None:
        if every_n_steps is not None and (
            isinstance(every_n_steps, bool)
            or not isinstance(every_n_steps, int)
            or every_n_steps < 1
        ):
            raise ConfigError(
                f"Checkpoint: every_n_steps must be an int >= 1 or None, got {every_n_steps!r}"
            )
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ConfigError(f"Checkpoint: keep must be an int >= 1, got {keep!r}")
        self.dir = Path(dir)
        self.every_n_steps, self.every_epoch, self.keep = every_n_steps, every_epoch, keep
        self.best = None if save_best is None else Monitor(save_best, mode, "Checkpoint")
        self.saved: list[str] = []
        self._writes = True

    def on_step_end(self, state: TrainState) -> Control | None:
        if self.every_n_steps and state.step % self.every_n_steps == 0:
            return self._save(state, self._name(state, f"step-{state.step:08d}.pt"))
        return None

    def on_epoch_end(self, state: TrainState) -> Control | None:
        ctl = Control()
        if self.best is not None and self.best.update(state.metrics):
            best = self._name(state, "best.pt")
            msg = f"saved {best} ({self.best.key}={self.best.value:.6g})"
            ctl.events.append(self._write(state, best, msg))
        if self.every_epoch:
            ctl.events += self._save(state, self._name(state, f"epoch-{state.epoch:04d}.pt")).events
        return ctl

    def _write(self, state: TrainState, name: str, message: str) -> dict[str, Any]:
        sharded = is_sharded(state.model)
        path = self.dir / name
        event = {"kind": "checkpoint", "message": message, "path": str(path)}
        payload = state.snapshot()
        # The file holds the event announcing it, stamped as the trainer will
        # stamp it, so a run resumed from it keeps that event in its history.
        payload["events"].append(
            {"type": "event", "epoch": state.epoch, "step": state.step, **event}
        )
        # Under DDP every rank reaches this point at the same step (collective
        # gather of the per-rank RNGs); only rank 0 writes.
        self._writes = share_ranks(payload)
        if sharded:
            save_sharded(path, payload, state.model, state.optimizer, self._writes)
        elif self._writes:
            save_checkpoint(path, payload)
        return event

    @staticmethod
    def _name(state: TrainState, name: str) -> str:
        # A sharded (FSDP) checkpoint is a directory: the name without ".pt".
        return name.removesuffix(".pt") if is_sharded(state.model) else name

    def _save(self, state: TrainState, name: str) -> Control:
        # Record the file before the snapshot, so the saved list in the
        # checkpoint includes the checkpoint itself (rotation after a resume).
        if name in self.saved:
            self.saved.remove(name)
        self.saved.append(name)
        event = self._write(state, name, f"saved {name}")
        if self._writes:
            write_text(self.dir / LATEST, name)
            for old in self.saved[: -self.keep]:
                if (self.dir / old).is_dir():
                    shutil.rmtree(self.dir / old, ignore_errors=True)
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    (self.dir / old).unlink()
        self.saved = self.saved[-self.keep :]
        return Control(events=[event])

    def state_dict(self) -> dict[str, Any]:
        return {"saved": list(self.saved), "best": None if self.best is None else self.best.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.saved = list(state.get("saved", []))
        if self.best is not None and state.get("best") is not None:
            self.best.load(state["best"])
