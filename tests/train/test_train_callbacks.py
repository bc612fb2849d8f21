"""Events, Control, EarlyStopping, MetricsLogger and ProgressBar."""

import csv
import io
import json
import os

import pytest
import torch
from rich.console import Console
from torch import nn

from gradwise.errors import ConfigError
from gradwise.nn import multiclass
from gradwise.train import (
    EVENTS,
    Callback,
    Control,
    EarlyStopping,
    MetricsLogger,
    ProgressBar,
    Trainer,
    TrainState,
)


def data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    return X, X @ torch.randn(4, 1, generator=g)


def trainer(callbacks, lr=0.05, seed=0, **kw):
    torch.manual_seed(seed)
    model = nn.Linear(4, 1)
    return Trainer(
        model, torch.optim.SGD(model.parameters(), lr=lr), nn.MSELoss(), callbacks=callbacks, **kw
    )


class Handles(Callback):
    """Records every event by overriding each method (so the trainer dispatches them)."""

    def __init__(self):
        self.calls = []

    def _rec(self, name, state):
        self.calls.append((name, state.epoch, state.batch_in_epoch, state.step))


for _ev in EVENTS:
    setattr(
        Handles,
        _ev,
        (lambda ev: lambda self, state, *a: self._rec(ev, state))(_ev),
    )


def test_event_order_with_accumulation_and_validation():
    rec = Handles()
    X, y = data(n=24)  # batch 8: 3 batches, grad_accum 2: steps after batches 2 and 3
    trainer([rec], epochs=2, batch_size=8, grad_accum=2).fit((X, y), val=(X, y))
    epoch1 = [
        ("on_epoch_start", 1, 0, 0),
        ("on_batch_start", 1, 0, 0),
        ("on_after_backward", 1, 1, 0),
        ("on_batch_start", 1, 1, 0),
        ("on_after_backward", 1, 2, 0),
        ("on_before_step", 1, 2, 0),
        ("on_step_end", 1, 2, 1),
        ("on_batch_start", 1, 2, 1),
        ("on_after_backward", 1, 3, 1),
        ("on_before_step", 1, 3, 1),
        ("on_step_end", 1, 3, 2),
        ("on_validation_end", 1, 3, 2),
        ("on_epoch_end", 1, 3, 2),
    ]
    assert rec.calls[0] == ("on_fit_start", 0, 0, 0)
    assert rec.calls[1:14] == epoch1
    assert [c[0] for c in rec.calls[14:27]] == [c[0] for c in epoch1]
    assert rec.calls[-1] == ("on_fit_end", 2, 3, 4)
    assert len(rec.calls) == 28


def test_exception_fires_on_exception_not_fit_end():
    rec = Handles()

    class Boom(Callback):
        def on_step_end(self, state):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        trainer([rec, Boom()]).fit(data())
    names = [c[0] for c in rec.calls]
    assert names[-1] == "on_exception" and "on_fit_end" not in names


def test_control_stop_mid_epoch_still_records_the_partial_epoch():
    class StopAt(Callback):
        def on_step_end(self, state):
            return Control(stop=True) if state.step == 3 else None

    hist = trainer([StopAt()], epochs=5, batch_size=8).fit(data())
    assert len(hist) == 1 and hist[0]["step"] == 3 and hist[0]["batches"] == 3


def test_skip_step_leaves_weights_untouched_and_counts_the_step():
    class Skip(Callback):
        def on_before_step(self, state):
            return {"skip_step": True}  # a dict of Control fields works too

    t = trainer([Skip()], batch_size=8)
    before = [p.clone() for p in t.model.parameters()]
    hist = t.fit(data())
    assert all(torch.equal(a, b) for a, b in zip(before, t.model.parameters()))
    assert hist[0]["step"] == 5
    assert all(p.grad is None for p in t.model.parameters())


def test_emitted_events_are_stamped_and_broadcast():
    seen = []

    class Emit(Callback):
        def on_epoch_end(self, state):
            return Control.emit("note", f"epoch {state.epoch} done", value=state.epoch)

    class Listen(Callback):
        def on_event(self, state, record):
            seen.append(record)

    hist = trainer([Emit(), Listen()], epochs=2, batch_size=20).fit(data())
    assert seen == hist.events
    assert seen[1] == {
        "type": "event",
        "epoch": 2,
        "step": 4,
        "kind": "note",
        "message": "epoch 2 done",
        "value": 2,
    }


def test_bad_callback_return_and_object():
    class Bad(Callback):
        def on_epoch_end(self, state):
            return True

    with pytest.raises(TypeError, match=r"Bad.on_epoch_end returned bool"):
        trainer([Bad()]).fit(data())
    with pytest.raises(TypeError, match="handles no event"):
        trainer([object()])


def test_early_stopping_stops_and_restores_best_weights():
    X, y = data()
    snapshots = {}

    class Keep(Callback):
        def on_epoch_end(self, state):
            snapshots[state.epoch] = {k: v.clone() for k, v in state.model.state_dict().items()}

    # Validation targets of the opposite sign: the better the fit, the worse val_loss,
    # so epoch 1 is the best and training stops after `patience` more epochs.
    es = EarlyStopping("val_loss", patience=2)
    t = trainer([Keep(), es], epochs=10, batch_size=10)
    hist = t.fit((X, y), val=(X, -y))
    vl = hist.series("val_loss")
    assert vl[0] < vl[1] < vl[2] and len(hist) == 3
    kinds = [e["kind"] for e in hist.events]
    assert kinds == ["early_stop", "restore_best"]
    assert hist.events[0]["best_epoch"] == 1 and hist.events[0]["epoch"] == 3
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, snapshots[1][k])


def test_early_stopping_min_delta_and_mode():
    es = EarlyStopping("val_accuracy", patience=1, min_delta=0.05)
    assert es.monitor.mode == "max"
    state = TrainState(model=nn.Linear(1, 1), optimizer=None)
    stops = []
    for epoch, acc in enumerate([0.5, 0.52, 0.6, 0.61], start=1):
        state.metrics = {"epoch": epoch, "val_accuracy": acc}
        ctl = es.on_epoch_end(state)
        stops.append(bool(ctl and ctl.stop))
    # 0.52 and 0.61 improve by less than min_delta.
    assert stops == [False, True, False, True]
    with pytest.raises(ConfigError, match="mode='min' or 'max'"):
        EarlyStopping("val_weird")
    with pytest.raises(ConfigError, match="unknown EarlyStopping mode 'up'"):
        EarlyStopping(mode="up")
    with pytest.raises(ConfigError, match="patience"):
        EarlyStopping(patience=0)


def test_early_stopping_without_val_data_names_available_keys():
    with pytest.raises(ConfigError, match=r"'val_loss' is not in the epoch record.*train_loss"):
        trainer([EarlyStopping()]).fit(data())


def test_metrics_logger_jsonl_and_csv(tmp_path):
    X = torch.randn(60, 4)
    yc = (X[:, 0] > 0).long()
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    logger = MetricsLogger(tmp_path, log_every=2)
    hist = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        multiclass(2),
        epochs=2,
        batch_size=10,
        callbacks=[logger, EarlyStopping("val_accuracy", patience=5)],
    ).fit((X, yc), val=(X, yc))
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in lines if r["type"] == "step"]
    epochs = [r for r in lines if r["type"] == "epoch"]
    assert [r["step"] for r in steps] == [2, 4, 6, 8, 10, 12]
    assert set(steps[0]) == {"type", "epoch", "step", "batch", "loss", "lr"}
    assert steps[3] == {**steps[3], "epoch": 2, "batch": 2, "lr": 0.1}
    assert epochs == list(hist)
    assert set(epochs[0]) == {
        "type", "epoch", "step", "batches", "train_loss", "train_accuracy",
        "val_loss", "val_accuracy", "lr", "epoch_time",
    }  # fmt: skip
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["val_loss"]) for r in rows] == hist.series("val_loss")
    assert "type" not in rows[0]


def test_progress_bar_draws_on_a_terminal_and_summarises_elsewhere():
    X, y = data()
    out = io.StringIO()
    con = Console(file=out, force_terminal=True, width=120)
    trainer([ProgressBar(console=con, refresh=0.0)], epochs=2, batch_size=10).fit((X, y))
    text = out.getvalue()
    assert "epoch 2/2" in text and "4/4" in text and "loss" in text
    plain = io.StringIO()
    con = Console(file=plain, force_terminal=False, width=200)
    trainer([ProgressBar(console=con)], epochs=2, batch_size=10).fit((X, y))
    lines = plain.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  step 8  train_loss ")
    quiet = io.StringIO()
    trainer([ProgressBar(enabled=False, console=Console(file=quiet))]).fit((X, y))
    assert quiet.getvalue() == ""


def _epoch_lines(text):
    return [ln for ln in text.splitlines() if ln.startswith("epoch ")]


def test_progress_in_a_log_is_one_unwrapped_line_per_epoch_with_its_time():
    # Not a TTY, a narrow console (rich wraps a file at 80 columns): lines must not wrap.
    X, y = data()
    out = io.StringIO()
    con = Console(file=out, force_terminal=False, width=40)
    es = EarlyStopping("val_loss", patience=1)
    hist = trainer([ProgressBar(console=con), es], epochs=10, batch_size=10).fit(
        (X, y), val=(X, -y)
    )
    lines = out.getvalue().splitlines()
    epochs = _epoch_lines(out.getvalue())
    assert len(epochs) == len(hist) == 2
    for line, record in zip(epochs, hist, strict=True):
        assert len(line) > 40  # long enough that a wrap at 40 columns would split it
        assert f"val_loss {record['val_loss']:.4g}" in line
        seconds = float(line.rsplit("  ", 1)[1].rstrip("s"))
        assert seconds > 0 and seconds == pytest.approx(record["epoch_time"], rel=0.05)
    # every line is an epoch line or an event: nothing wrapped onto a line of its own
    assert all(ln.startswith(("epoch ", "[")) for ln in lines), lines
    # the early stop comes after the line of the epoch it stopped at
    stop = next(i for i, ln in enumerate(lines) if ln.startswith("[early_stop]"))
    assert lines[stop - 1].startswith("epoch 2/10")


def test_progress_bar_leaves_no_stale_bar_on_a_terminal():
    X, y = data()
    out = io.StringIO()
    con = Console(file=out, force_terminal=True, width=120)
    trainer([ProgressBar(console=con, refresh=0.0)], epochs=2, batch_size=10).fit((X, y))
    text = out.getvalue()
    # the bar is erased when fit ends (cursor up, erase line): what is printed
    # next starts where the bar was, not below a stale copy of it
    assert "epoch 2/2  step 8" in text
    assert text.endswith("\x1b[1A\x1b[2K")


def test_restore_best_says_it_replaces_the_guards_choice_of_another_epoch():
    from types import SimpleNamespace

    from gradwise.train import EarlyStopping

    model = torch.nn.Linear(2, 1)
    best = {k: torch.full_like(v, 7.0) for k, v in model.state_dict().items()}
    es = EarlyStopping(monitor="val_accuracy", restore_best=True)
    es.best_weights, es.monitor.epoch, es.monitor.value = best, 2, 0.95
    guard_event = {"type": "event", "kind": "best_weights", "epoch": 4, "step": 40,
                   "monitor": "val_loss", "message": "the model holds the weights of epoch 4"}  # fmt: skip
    state = SimpleNamespace(history=[{"epoch": 5}], model=model, events=[guard_event], step=40)
    ctl = es.on_fit_end(state)
    (event,) = ctl.events
    assert event["kind"] == "restore_best" and event["best_epoch"] == 2
    assert "replace the guard's epoch 4 (best by val_loss)" in event["message"]
    assert "the model ends with epoch 2's weights" in event["message"]
    assert torch.equal(model.weight, best["weight"])
    # a guard event of an earlier fit (another step) is not this fit's: plain message
    state.events = [{**guard_event, "step": 12}]
    (event,) = es.on_fit_end(state).events
    assert event["message"] == "restored the weights of epoch 2 (val_accuracy=0.95)"


def test_metrics_csv_is_replaced_each_epoch_and_made_durable_once_at_the_end(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    seen: list[int] = []

    class Watch(Callback):
        order = 95  # after the logger: the csv of this epoch is on disk

        def on_epoch_end(self, state):
            rows = (tmp_path / "metrics.csv").read_text().splitlines()
            seen.append(len(rows) - 1)

    X, y = data()
    trainer([MetricsLogger(tmp_path), Watch()], epochs=4, batch_size=10).fit((X, y))
    assert seen == [1, 2, 3, 4]  # every epoch's row is readable at once
    # 4 epochs: no fsync while training; at the end the jsonl, the csv and its directory
    assert len(synced) == 3
    with open(tmp_path / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
