"""A run's and a sweep's report.html open in headless Chromium.

The page must load, every plot must decode (an ``<img>`` with a positive
natural width), and the browser must log no console error, uncaught page
error or failed request. Needs Debian's ``chromium`` (``.ci/run`` installs
it) and the ``playwright`` Python package, which drives that browser and
downloads none of its own.
"""

from __future__ import annotations

import os
import shutil

import pytest
import torch

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    for name in (os.environ.get("GRADWISE_CHROMIUM", ""), "chromium", "chromium-browser"):
        path = shutil.which(name) if name else None
        if path:
            return path
    pytest.skip("no chromium on PATH (Debian: apt-get install chromium); .ci/run installs it")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = _chromium()
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def _open(browser, path):
    """Load ``path``; return (problems seen by the browser, images, natural widths)."""
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
    response = page.goto(path.resolve().as_uri(), wait_until="load")
    assert response is None or response.ok
    widths = page.eval_on_selector_all(
        "img", "els => els.map(e => e.complete ? e.naturalWidth : -1)"
    )
    title = page.title()
    page.close()
    return problems, widths, title


@pytest.fixture
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny_run(tmp_path, name, epochs):
    """A run config of seconds: an 8-unit MLP on iris."""
    return {
        "name": name,
        "runs_dir": str(tmp_path / "runs"),
        "data": {"name": "iris", "seed": 0},
        "model": {"hidden": [8]},
        "training": {"epochs": epochs, "batch_size": 32, "seed": 0, "device": "cpu"},
        "callbacks": {"progress": False},
    }


def test_run_report_opens_in_chromium(browser, tmp_path, _one_thread):
    from gradwise.config import parse_config
    from gradwise.recipes.train import run

    cfg = parse_config(_tiny_run(tmp_path, "page", epochs=3))
    result = run(cfg)
    report = result.run_dir / "report.html"
    problems, widths, title = _open(browser, report)
    assert problems == []
    assert len(widths) >= 3, widths  # loss, accuracy and lr plots at least
    assert all(w > 0 for w in widths), widths
    assert "page" in title


def test_sweep_report_opens_in_chromium(browser, tmp_path, _one_thread):
    from gradwise.sweep import parse_sweep, run_sweep

    raw = _tiny_run(tmp_path, "grid", epochs=2)
    raw["sweep"] = {
        "method": "grid",
        "metric": "val_accuracy",
        "params": {
            "optimizer.lr": {"values": [0.01, 0.1]},
            "optimizer.weight_decay": {"values": [0.0, 0.01]},
        },
    }
    result = run_sweep(parse_sweep(raw), verbose=False)
    problems, widths, _ = _open(browser, result.report)
    assert problems == []
    assert len(widths) >= 2, widths  # overlaid curves and the two-parameter heatmap
    assert all(w > 0 for w in widths), widths
    # every trial's own page opens too
    trial_pages = sorted((result.run_dir / "trials").glob("trial-*/report.html"))
    assert len(trial_pages) == 4
    problems, widths, _ = _open(browser, trial_pages[0])
    assert problems == [] and widths and all(w > 0 for w in widths)
