"""The "instruct" demo section, quick version: pretrain, tune with LoRA, measure, report."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_quick_instruct_demo_tunes_and_reports(tmp_path):
    from gradwise.demo._registry import run_section

    r = run_section("instruct", tmp_path, quick=True)
    for key in ("exact_match_before", "exact_match_after"):
        assert 0.0 <= r[key] <= 1.0
    # two quick epochs already move teacher-forced response accuracy upwards
    assert r["token_accuracy_after"] > r["token_accuracy_before"]
    report = tmp_path / "report.html"
    assert r["report"] == str(report) and report.is_file()
    assert "Generations (held-out)" in report.read_text()
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["data"]["packed_attention"] == "varlen"
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
