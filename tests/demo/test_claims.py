"""The tour's claims (gradwise.demo._claims): definitions, the table, and the claims themselves.

The full check (every section, 5 seeds x {1, 2} threads) is `gradwise demo
--check` / `benchmarks/claims.py`, too long for the suite; here the cheap
sections' claims run on 3 seeds each, with the thread count of the run
(`make test-claims` runs them with one thread and with the default).
"""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from gradwise.cli import app
from gradwise.demo import (
    SECTIONS,
    Claim,
    SectionClaims,
    _claims_run,
    all_pass,
    claims_table,
    sections,
)
from gradwise.demo._claims import Run, measure, sections_with_claims, summarize
from gradwise.errors import ConfigError

SEEDS = (0, 1, 2)


def test_every_claim_names_a_tour_section_once():
    tour = {s.name for s in sections()}
    names = [c.name for s in SECTIONS for c in s.claims]
    assert len(names) == len(set(names))
    for sec in SECTIONS:
        assert sec.section in tour
        assert sec.claims and all(c.name.startswith(sec.section + ".") for c in sec.claims)
    # every section of the tour has claims
    assert tour == {s.section for s in SECTIONS}


def test_unknown_section_is_a_clear_error():
    with pytest.raises(ConfigError, match="nope"):
        sections_with_claims(["lr", "nope"])
    with pytest.raises(ConfigError, match="seeds"):
        _claims_run.check_claims(["lr"], seeds=0)
    with pytest.raises(ConfigError, match="threads"):
        _claims_run.check_claims(["lr"], seeds=1, threads=[0])


def _fake(name: str, values: list[float], needs=()) -> SectionClaims:
    it = iter(values)
    return SectionClaims(
        name,
        lambda seed, work_dir: {"x": next(it)},
        (Claim(f"{name}.x", "x >= 1", lambda v: v["x"] - 1.0),),
        needs,
    )


def test_table_reports_worst_margin_fail_error_and_skip(tmp_path):
    ok, bad, nan = _fake("ok", [1.5, 1.2]), _fake("bad", [2.0, 0.9]), _fake("nan", [math.nan])
    boom = SectionClaims("boom", lambda s, d: 1 / 0, (Claim("boom.x", "", lambda v: 0.0),))
    gone = _fake("gone", [], needs=(("no_such_module_for_gradwise", "demo"),))
    runs = [measure(ok, s, tmp_path, 1) for s in (0, 1)]
    runs += [measure(bad, s, tmp_path, 2) for s in (0, 1)]
    runs += [measure(nan, 0, tmp_path, 1), measure(boom, 0, tmp_path, 1)]
    assert gone.missing() == "skipped (needs gradwise[demo])" and ok.missing() is None
    rows = summarize([ok, bad, nan, boom, gone], runs, {"gone": gone.missing()})
    by = {r["claim"]: r for r in rows}
    assert by["ok.x"]["status"] == "pass" and by["ok.x"]["worst"] == pytest.approx(0.2)
    assert by["bad.x"]["status"] == "FAIL" and by["bad.x"]["worst"] == pytest.approx(-0.1)
    assert by["nan.x"]["status"] == "FAIL"  # a NaN margin never passes
    assert by["boom.x"]["status"].startswith("ERROR (ZeroDivisionError")
    assert by["gone.x"]["status"] == "skipped (needs gradwise[demo])"
    assert by["ok.x"]["runs"] == 2 and by["gone.x"]["runs"] == 0
    table = claims_table(rows)
    assert "| ok.x | x >= 1 | 2 | +0.200 | pass |" in table
    assert "| bad.x | x >= 1 | 2 | -0.100 | FAIL |" in table
    assert not all_pass(rows)
    assert all_pass([r for r in rows if r["claim"] in ("ok.x", "gone.x")])


@pytest.mark.slow
def test_check_runs_each_thread_count_in_its_own_process(tmp_path):
    # a real subprocess per thread count: the linear section's claims on one seed
    lines: list[str] = []
    record = tmp_path / "runs.jsonl"
    rows = _claims_run.check_claims(["linear"], 1, [1, 2], echo=lines.append, record=record)
    assert [r["claim"] for r in rows] == ["linear.recall", "linear.sparse", "linear.ridge"]
    assert all(r["status"] == "pass" and r["runs"] == 2 for r in rows), rows
    assert len(lines) == 2 and "1 thread(s)" in lines[0] and "2 thread(s)" in lines[1]
    assert len(record.read_text().splitlines()) == 2


def test_cli_check_prints_the_table_and_exits_nonzero_on_a_failed_claim(monkeypatch):
    import gradwise.demo

    failing = [{"claim": "lr.guarded", "text": "t", "runs": 10, "worst": -0.01,
                "status": "FAIL", "seconds": 1.0}]  # fmt: skip
    calls = []

    def fake(sections, seeds, threads, echo=None):
        calls.append((sections, seeds, threads))
        return failing

    monkeypatch.setattr(gradwise.demo, "check_claims", fake)
    result = CliRunner().invoke(app, ["demo", "lr", "--check", "--seeds", "3", "--threads", "1"])
    assert result.exit_code == 1, result.output
    assert "| lr.guarded | t | 10 | -0.010 | FAIL | 1.0 |" in result.output
    assert calls == [(["lr"], 3, [1])]
    failing[0]["status"] = "pass"
    result = CliRunner().invoke(app, ["demo", "--check"])
    assert result.exit_code == 0 and calls[-1] == (None, 5, [1, 2])


# -- the claims themselves: the cheap sections, per seed ----------------------------------------


@pytest.mark.claim
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("section", ["linear"])
def test_quick_tour_claims_hold(section, seed, tmp_path):
    import torch

    (sec,) = sections_with_claims([section])
    run = measure(sec, seed, tmp_path, torch.get_num_threads())
    assert run.error is None, run.error
    assert all(m >= 0 for m in run.margins.values()), (run.margins, run.values)


@pytest.mark.claim
@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("section", ["train", "finetune", "regularize"])
def test_quick_tour_claims_hold_slow(section, seed, tmp_path):
    import torch

    (sec,) = sections_with_claims([section])
    run: Run = measure(sec, seed, tmp_path, torch.get_num_threads())
    assert run.error is None, run.error
    assert all(m >= 0 for m in run.margins.values()), (run.margins, run.values)


def test_margins_of_extreme_values_are_numbers():
    # a gradient ratio that underflowed to 0 vanished by any measure: a large margin, no error
    (act,) = sections_with_claims(["activations"])
    vanish = next(c for c in act.claims if c.name == "activations.vanish")
    assert vanish.margin({"sigmoid_first_over_last_grad": 0.0}) > 290
    assert vanish.margin({"sigmoid_first_over_last_grad": 1e-7}) == pytest.approx(4.0)
    assert vanish.margin({"sigmoid_first_over_last_grad": 0.1}) == pytest.approx(-2.0)
