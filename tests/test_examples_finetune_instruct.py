"""The finetune and instruct examples run as their comments say, with tiny overrides.

Each is run the documented way, from the repository root with the CLI, so
that its relative paths (``runs/...``, ``examples/...``) are the ones a user
has; only ``runs_dir``, the source or base model and the length change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradwise.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_finetune_example_runs_after_the_digits_example(at_root, tmp_path):
    # the documented order: train examples/digits.yaml, then finetune from its run
    _cli("train", "examples/digits.yaml", "--set", f"runs_dir={tmp_path}",
         "--set", "training.epochs=2", "--no-progress")  # fmt: skip
    out = _cli("finetune", "examples/finetune_digits.yaml", "--set", f"runs_dir={tmp_path}",
               "--set", f"source.path={tmp_path / 'digits'}", "--set", "training.epochs=2",
               "--no-progress")  # fmt: skip
    results = json.loads((tmp_path / "finetune_digits" / "results.json").read_text())
    # five new classes learned above chance (0.2), the source task scored before and after
    assert results["test"]["accuracy"] > 0.4
    assert {"source_before", "source_after"} <= set(results)
    assert "forgetting" in out and (tmp_path / "finetune_digits" / "report.html").is_file()


def test_instruct_example_runs_on_a_tiny_base(at_root, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from gradwise.instruct import read_jsonl
    from gradwise.instruct._base import tiny_config, train_tokenizer

    train = read_jsonl(EXAMPLES / "instruct_data" / "train.jsonl")
    test = read_jsonl(EXAMPLES / "instruct_data" / "test.jsonl")
    # the demo's task: ten tasks, 20 held-out prompts each, none of them trained
    assert len(test) == 200
    prompts = {ex.messages[0]["content"] for ex in train}
    assert not prompts & {ex.messages[0]["content"] for ex in test}
    # a base of seconds in place of `gradwise instruct init-base --out runs/base`
    tok = train_tokenizer([m["content"] for ex in train[:200] for m in ex.messages], vocab_size=300)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        tiny_config("llama", len(tok), hidden=16, layers=1, heads=2, max_length=128,
                    bos_id=tok.bos_token_id, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    )  # fmt: skip
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    _cli("instruct", "examples/instruct.yaml", "--set", f"runs_dir={tmp_path}",
         "--set", f"model.path={tmp_path / 'base'}", "--set", "training.epochs=1",
         "--set", "eval.max_examples=8", "--set", "eval.max_new_tokens=4",
         "--set", "lora.r=2", "--set", "lora.alpha=4",
         "--no-progress")  # fmt: skip
    run_dir = tmp_path / "instruct"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["data"]["train_examples"] == len(train)
    assert results["after"]["n"] == 8
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
