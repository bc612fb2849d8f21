"""Every kind of report.html opens in headless Chromium and reads on a laptop screen.

The page must load, every plot must decode (an ``<img>`` with a positive
natural width), and the browser must log no console error, uncaught page
error or failed request. Each kind (run, sweep, lr demo, linear, instruct)
is also laid out in a 1024 px window: nothing may be wider than the window
(no horizontal scroll), no plot may be shown narrower than it is (the old
520 px cap), and a click on any plot shows it at its full natural size.
Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright``
Python package, which drives that browser and downloads none of its own.
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
        "trial_reports": True,  # each trial's own page too (off by default)
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


# -- layout: no horizontal overflow, every plot readable -------------------------------------

WINDOW = {"width": 1024, "height": 768}
WIDE = 800  # px: a plot at least this wide needs no zoom


def _layout(browser, path):
    """Open ``path`` in a 1024 px window; return (problems, overflow, plots).

    ``plots`` is one dict per plot: its name, natural width, shown width, the
    width it gets in the click-to-zoom overlay, and whether the overlay opened.
    """
    page = browser.new_page(viewport=WINDOW)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.goto(path.resolve().as_uri(), wait_until="load")
    overflow = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    plots = []
    for img in page.query_selector_all(".plots img"):
        info = img.evaluate(
            "e => ({name: e.dataset.plot, alt: e.alt, natural: e.naturalWidth,"
            " shown: e.getBoundingClientRect().width,"
            " room: e.closest('.plots').getBoundingClientRect().width})"
        )
        img.scroll_into_view_if_needed()
        img.click()
        page.wait_for_function(  # the overlay's copy decoded (the same data URI: at once)
            "() => { const i = document.querySelector('#zoom img');"
            " return !!i && i.complete && i.naturalWidth > 0; }",
            timeout=5000,
        )
        info["zoomed"] = page.evaluate(
            "() => { const z = document.getElementById('zoom'); const i = z.querySelector('img');"
            " return z.hidden ? null : i.getBoundingClientRect().width; }"
        )
        page.mouse.click(5, 5)  # closes the overlay
        info["closed"] = page.evaluate("() => document.getElementById('zoom').hidden")
        plots.append(info)
    page.close()
    return problems, overflow, plots


def _assert_readable(browser, path, *, min_plots=1, all_wide=False):
    problems, (scroll, inner), plots = _layout(browser, path)
    assert problems == []
    assert scroll <= inner, f"{path.name}: the page is {scroll} px wide in a {inner} px window"
    assert len(plots) >= min_plots, plots
    for p in plots:
        assert p["natural"] > 0, p
        # shown at its own size, or as wide as the page allows: never capped below that
        assert p["shown"] >= min(p["natural"], p["room"]) - 1, p
        # a click shows the plot at its full size; the next click closes it
        assert p["zoomed"] is not None and abs(p["zoomed"] - p["natural"]) <= 1, p
        assert p["closed"], p
        assert p["alt"] and p["alt"] != p["name"], p  # a caption in words, not a file stem
        if all_wide:
            assert p["natural"] >= WIDE, p
    return plots


def test_run_report_layout(browser, tmp_path, _one_thread):
    from gradwise.config import parse_config
    from gradwise.recipes.train import run

    raw = _tiny_run(tmp_path, "layout", epochs=4)
    raw["schedule"] = {"name": "cosine"}  # a changing lr: the lr plot too
    result = run(parse_config(raw))
    plots = _assert_readable(browser, result.run_dir / "report.html", min_plots=3, all_wide=True)
    captions = {p["name"]: p["alt"] for p in plots}
    assert captions["step_loss"] == "Training loss per step"
    page = (result.run_dir / "report.html").read_text()
    # the long per-epoch table is the page's last section
    assert page.rindex("<h2>") == page.index("<h2>Per-epoch metrics</h2>")


def test_sweep_report_layout(browser, tmp_path, _one_thread):
    from gradwise.sweep import parse_sweep, run_sweep

    raw = _tiny_run(tmp_path, "grid", epochs=2)
    raw["sweep"] = {
        "method": "grid",
        "metric": "val_accuracy",
        "params": {
            "optimizer.lr": {"values": [0.01, 0.1]},
            "optimizer.weight_decay": {"values": [0.0, 0.01]},
        },
        "trial_reports": True,  # each trial's own page too (off by default)
    }
    result = run_sweep(parse_sweep(raw), verbose=False)
    _assert_readable(browser, result.report, min_plots=2, all_wide=True)


def test_lr_demo_report_layout_and_order(browser, tmp_path, monkeypatch, _one_thread):
    from gradwise.demo import _lr
    from gradwise.report import write_report

    full = _lr._digits

    def fewer(seed=0):  # a fifth of the rows: the page, not the claim, is under test
        return tuple((X[::5], y[::5]) for X, y in full(seed))

    monkeypatch.setattr(_lr, "_digits", fewer)
    out = tmp_path / "demo-lr"
    _lr.demo(out, quick=True)

    def order(page):
        return [page.index(f"<h2>{t}</h2>") for t in (
            "Four learning rates, one model", "Training curves",
            "The learning-rate range test", "Per-epoch metrics")]  # fmt: skip

    page = (out / "report.html").read_text()
    assert order(page) == sorted(order(page))  # the point first, the long table last
    _assert_readable(browser, out / "report.html", min_plots=4)
    # re-drawn the way `gradwise report runs/demo-lr` does: the demo's sections stay
    write_report(out)
    again = (out / "report.html").read_text()
    assert "<title>gradwise demo: the learning rate</title>" in again
    assert order(again) == sorted(order(again))
    assert again.count('data-plot="lr_loss_curves"') == 1
    assert again.count('data-plot="lr_finder"') == 1


def test_linear_report_layout(browser, tmp_path):
    from gradwise.config import LinearConfig, parse_config
    from gradwise.recipes.linear import run

    cfg = parse_config(
        {
            "name": "lin",
            "runs_dir": str(tmp_path / "runs"),
            "data": {"name": "diabetes", "test": 0.2},
            "model": {"kind": "lasso", "lam": "cv"},
        },
        LinearConfig,
    )
    result = run(cfg)
    plots = _assert_readable(browser, result.run_dir / "report.html", min_plots=3)
    assert {"path", "cv", "coefficients"} <= {p["name"] for p in plots}


def test_instruct_report_layout(browser, tmp_path, _one_thread):
    from transformers import AutoModelForCausalLM

    from gradwise.config import parse_config
    from gradwise.instruct import Example, InstructConfig, write_jsonl
    from gradwise.instruct._base import tiny_config, train_tokenizer
    from gradwise.recipes.instruct import run

    pairs = [("Reverse the word: CAT", "TAC"), ("What is 2 plus 3?", "5"),
             ("Spell out: DOG", "D-O-G"), ("First letter: QUIZ", "Q")]  # fmt: skip
    tok = train_tokenizer([f"{q} {a}" for q, a in pairs] * 10, vocab_size=280)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        tiny_config("llama", len(tok), hidden=16, layers=1, heads=2, max_length=128,
                    bos_id=tok.bos_token_id, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    )  # fmt: skip
    base = tmp_path / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    write_jsonl([Example.from_alpaca(q, a) for q, a in pairs], tmp_path / "train.jsonl")
    cfg = parse_config(
        {
            "name": "sft",
            "runs_dir": str(tmp_path / "runs"),
            "model": {"path": str(base)},
            "data": {"train": str(tmp_path / "train.jsonl"), "val": str(tmp_path / "train.jsonl"),
                     "template": "chatml", "max_length": 64},
            "lora": None,
            "optimizer": {"lr": 1e-2, "warmup": 0.0},
            "training": {"epochs": 2, "batch_size": 4, "device": "cpu", "progress": False,
                         "checkpoint": False},
            "eval": {"max_new_tokens": 4, "before": True},
            "save": "merged",
        },
        InstructConfig,
    )  # fmt: skip
    result = run(cfg)
    page = (result.run_dir / "report.html").read_text()
    # before/after share one metrics table; data and parameter counts get their own
    assert page.count("<th>exact_match</th>") == 1
    assert "<th>train_examples</th>" not in page
    _assert_readable(browser, result.run_dir / "report.html", min_plots=1)
