"""The "lr" demo section: too small, lr_find's suggestion, too large without and with the guard."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_quick_lr_demo_numbers_and_report(tmp_path):
    from gradwise.demo._registry import run_section

    r = run_section("lr", tmp_path, quick=True)
    assert 1e-3 < r["suggested_lr"] < 1.0
    assert r["suggested_test_accuracy"] >= 0.9
    # 1/100 of the rate barely moves in the same steps; 10x ends at chance (10 classes).
    assert r["too_small_test_accuracy"] < r["suggested_test_accuracy"] - 0.2
    assert r["too_large_test_accuracy"] <= 0.2
    assert r["too_large_guarded_test_accuracy"] >= 0.9 and r["rescues"] >= 1

    page = (tmp_path / "report.html").read_text()
    assert r["report"] == str(tmp_path / "report.html")
    for figure in ("lr_loss_curves", "lr_finder", "step_loss"):
        assert f'alt="{figure}"' in page
    assert "divergence_rescue" in page and "Four learning rates, one model" in page
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    rescues = [e for e in records if e.get("kind") == "divergence_rescue"]
    assert len(rescues) == r["rescues"]
    assert rescues[0]["new_lr"] == pytest.approx(rescues[0]["old_lr"] / 2)
    assert rescues[0]["old_lr"] == pytest.approx(10 * r["suggested_lr"])
