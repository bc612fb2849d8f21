"""Write a run's records to ``metrics.jsonl`` and ``metrics.csv`` (and TensorBoard)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import IO, Any

from gradwise.errors import ConfigError
from gradwise.train._distributed import is_main_process
from gradwise.train._io import write_text
from gradwise.train._state import Callback, TrainState


def _tensorboard_writer(directory: Path, wanted: bool | str) -> Any:
    if wanted is False:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch's module needs the tensorboard package
        if wanted is True:
            raise ConfigError(
                "MetricsLogger: tensorboard=True needs the tensorboard package "
                "(pip install 'gradwise[tensorboard]')"
            ) from exc
        return None
    return SummaryWriter(str(directory / "tensorboard"))


class MetricsLogger(Callback):
    """Log step, epoch and event records as JSON lines, epochs as CSV.

    ``metrics.jsonl`` holds one JSON object per line, with a ``"type"`` key::

        {"type": "step", "epoch": 1, "step": 50, "batch": 50, "loss": 0.41, "lr": 0.1}
        {"type": "epoch", "epoch": 1, "step": 94, "batches": 94, "train_loss": 0.38,
         "train_accuracy": 0.87, "val_loss": 0.35, "val_accuracy": 0.88, "lr": 0.1,
         "epoch_time": 1.9}
        {"type": "event", "kind": "checkpoint", "epoch": 1, "step": 94, "message": "...", ...}

    Step records come every ``log_every`` optimizer steps (``batch`` is the
    batch count within the epoch; ``lr`` is the first parameter group's
    learning rate in that step, or in the epoch's last step), epoch
    records at each epoch end, event records whenever a callback emits one.
    Non-finite numbers are written as ``NaN``/``Infinity`` (Python's ``json``
    reads them). ``metrics.csv`` has one row per epoch record; it is replaced
    atomically at each epoch end and made durable (fsync) when ``fit`` ends,
    so a run's epochs cost no disk wait. With
    ``tensorboard`` (``"auto"``: when the package is installed) scalars also go
    to ``dir/tensorboard``.

    When ``fit`` resumes from a checkpoint, records the stopped run wrote after
    that checkpoint are dropped from ``metrics.jsonl`` first, so the file reads
    as one uninterrupted run. Under ``torchrun`` only rank 0 writes (the
    records already hold the numbers of every process).

    Example:
        >>> # Trainer(..., callbacks=[MetricsLogger("runs/a", log_every=10)])
    """

    order = 90  # after most callbacks: their events of the same epoch come first

    def __init__(
        self, dir: str | os.PathLike, log_every: int = 50, tensorboard: bool | str = "auto"
    ) -> None:
        if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 1:
            raise ConfigError(f"MetricsLogger: log_every must be an int >= 1, got {log_every!r}")
        if tensorboard not in (True, False, "auto"):
            raise ConfigError(
                f"MetricsLogger: tensorboard must be True, False or 'auto', got {tensorboard!r}"
            )
        self.dir = Path(dir)
        self.log_every, self.tensorboard = log_every, tensorboard
        self.jsonl_path, self.csv_path = self.dir / "metrics.jsonl", self.dir / "metrics.csv"
        self._file: IO[str] | None = None
        self._tb: Any = None
        self._silent = False  # a process other than rank 0

    # -- files -----------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _trim_for_resume(self, state: TrainState) -> None:
        if not self.jsonl_path.exists():
            return
        epochs_done = len(state.history)
        kept_events = {json.dumps(e, sort_keys=True) for e in state.events}
        keep = []
        for line in self.jsonl_path.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by the crash
                continue
            kind = r.get("type")
            if (
                (kind == "step" and r.get("step", 0) <= state.step)
                or (kind == "epoch" and r.get("epoch", 0) <= epochs_done)
                or (kind == "event" and json.dumps(r, sort_keys=True) in kept_events)
            ):
                keep.append(line + "\n")
        write_text(self.jsonl_path, "".join(keep))

    def _write_csv(self, history: list[dict[str, Any]], durable: bool = False) -> None:
        columns: list[str] = []
        for r in history:
            columns += [k for k in r if k != "type" and k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
        write_text(self.csv_path, buf.getvalue(), durable=durable)

    # -- events ------------------------------------------------------------------

    def on_fit_start(self, state: TrainState) -> None:
        self._silent = not is_main_process()
        if self._silent:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if state.resumed:
            self._trim_for_resume(state)
        mode = "a" if state.resumed else "w"
        self._file = open(self.jsonl_path, mode, encoding="utf-8")  # noqa: SIM115
        self._tb = _tensorboard_writer(self.dir, self.tensorboard)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.log_every or self._silent:
            return
        loss, lr = float(state.loss), float(state.last_lr)
        self._write(
            {
                "type": "step",
                "epoch": state.epoch,
                "step": state.step,
                "batch": state.batch_in_epoch,
                "loss": loss,
                "lr": lr,
            }
        )
        if self._tb is not None:
            self._tb.add_scalar("step/loss", loss, state.step)
            self._tb.add_scalar("step/lr", lr, state.step)

    def on_epoch_end(self, state: TrainState) -> None:
        if self._silent:
            return
        record = state.metrics
        self._write(record)
        self._file.flush()
        self._write_csv(state.history)
        if self._tb is not None:
            for key, value in record.items():
                if key not in ("type", "epoch") and isinstance(value, (int, float)):
                    self._tb.add_scalar(f"epoch/{key}", value, record["epoch"])

    def on_event(self, state: TrainState, record: dict[str, Any]) -> None:
        if self._silent:
            return
        if self._file is None:  # emitted after this logger closed (a later on_fit_end)
            with open(self.jsonl_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            return
        self._write(record)
        self._file.flush()

    def _finish(self, state: TrainState) -> None:
        if not self._silent and self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            if state.history:  # the epochs' rewrites skipped fsync: make the last one durable
                self._write_csv(state.history, durable=True)
        self._close()

    def on_fit_end(self, state: TrainState) -> None:
        self._finish(state)

    def on_exception(self, state: TrainState, exc: BaseException) -> None:
        self._finish(state)
