"""The "instruct" demo section, quick version: base from the cache, tune, report."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_quick_instruct_section_answers_stops_and_reuses_its_base(tmp_path, monkeypatch):
    from gradwise.demo._instruct import PLANS
    from gradwise.demo._registry import run_section
    from gradwise.instruct import cached_base

    monkeypatch.setenv("GRADWISE_CACHE_DIR", str(tmp_path / "cache"))
    r = run_section("instruct", tmp_path / "a", quick=True)
    assert not r["base_cached"]
    # the base model continues a prompt with more "facts" and never answers exactly
    assert r["exact_match_before"] <= 0.1
    assert r["token_accuracy_after"] > r["token_accuracy_before"] + 0.3
    # tuned, it answers and stops at the end of its turn: short answers, not a
    # run to max_new_tokens (the longest reference of these tasks has 7 characters)
    gens = [json.loads(line) for line in (tmp_path / "a" / "generations.jsonl").open()]
    assert sum(len(g["prediction"]) <= 8 for g in gens) >= 0.8 * len(gens)
    report = tmp_path / "a" / "report.html"
    assert r["report"] == str(report) and report.is_file()
    assert "Generations (held-out)" in report.read_text()
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["after"]["exact_match"] == r["exact_match_after"]
    # three splits of their own: the guard validates on val, exact match is on test alone
    plan = PLANS["quick"]
    n_tasks = len(plan["tasks"])
    assert results["data"]["val_examples"] == n_tasks * plan["n_val"]
    assert results["data"]["test_examples"] == results["after"]["n"] == n_tasks * plan["n_test"]
    prompts = {
        split: {g["messages"][0]["content"] for g in map(json.loads, path.open())}
        for split in ("train", "val", "test")
        for path in [tmp_path / "a" / "data" / f"{split}.jsonl"]
    }
    assert {g["prompt"] for g in gens} <= prompts["test"]
    assert not prompts["test"] & prompts["val"] and not prompts["test"] & prompts["train"]
    # the quick plan fine-tunes every weight (r=0) and saves the merged model
    assert (tmp_path / "a" / "model" / "config.json").is_file()
    # the section's base model is in the cache: a second run does not pretrain
    hit = cached_base(**{"tasks": plan["tasks"], **plan["base"]})  # as run_demo builds it
    assert hit.cached and hit.path.parent == tmp_path / "cache" / "base-models"


# -- the section's claim, per seed ---------------------------------------------------------------
# instruct.after: held-out exact match >= 0.5 after tuning; instruct.before: <= 0.1 before
# (gradwise.demo._claims, the definition `gradwise demo --check` uses). The seed draws the
# train/val/test splits, the adapters' initial weights and the batch order; the base model is
# the plan's, built once into a cache shared by the seeds. Measured (docs/instruct.md): 0.90-1.00
# after on seeds 0-4 with 1 and 2 threads, so the claim has a margin of >= 0.4 on each.


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADWISE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.mark.claim
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_instruct_claim_holds_on_each_seed(seed, tmp_path, shared_cache):
    import torch

    from gradwise.demo._claims import measure, sections_with_claims

    (section,) = sections_with_claims(["instruct"])
    run = measure(section, seed, tmp_path, torch.get_num_threads())
    assert run.error is None, run.error
    assert run.values["exact_match_before"] <= 0.1, run.values
    assert run.values["exact_match_after"] >= 0.5, run.values
    assert run.margins["instruct.after"] >= 0 and run.margins["instruct.before"] >= 0
