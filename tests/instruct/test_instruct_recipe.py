"""The ``sft`` recipe end to end: config checks, memorization, save and reload."""

from __future__ import annotations

import json

import pytest
import torch

from gradwise.config import parse_config
from gradwise.errors import ConfigError
from gradwise.instruct import Example, InstructConfig, evaluate, get_template, write_jsonl
from gradwise.recipes.instruct import run, sft

PAIRS = [
    ("Reverse the word: CAT", "TAC"),
    ("What is 2 plus 3?", "5"),
    ("Spell out: DOG", "D-O-G"),
    ("First letter: QUIZ", "Q"),
]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, tokenizer, model_factory):
    d = tmp_path_factory.mktemp("base")
    model = model_factory(tokenizer, "llama", hidden=48, layers=2, heads=2, seed=1)
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


def _cfg(tmp_path, base_dir, **over):
    raw = {
        "name": "t",
        "runs_dir": str(tmp_path),
        "model": {"path": str(base_dir)},
        "data": {"train": str(tmp_path / "train.jsonl"), "template": "chatml", "max_length": 64},
        "lora": None,
        "optimizer": {"lr": 1e-2, "warmup": 0.0},
        "training": {
            "epochs": 100,
            "batch_size": 4,
            "device": "cpu",
            "progress": False,
            "checkpoint": False,
        },
        "eval": {"max_new_tokens": 8, "before": True},
        "save": "merged",
    }
    for key, value in over.items():
        section, _, field = key.partition(".")
        if field:
            raw[section] = {**(raw[section] or {}), field: value}
        else:
            raw[section] = value
    return parse_config(raw, InstructConfig)


def test_config_is_strict_and_names_fields(tmp_path, base_dir):
    with pytest.raises(
        ConfigError, match="data.tempalte: unknown field \\(did you mean 'template'\\?\\)"
    ):
        parse_config(
            {"model": {"path": "m"}, "data": {"train": "x", "tempalte": "alpaca"}}, InstructConfig
        )
    with pytest.raises(ConfigError, match="data.template"):
        parse_config(
            {"model": {"path": "m"}, "data": {"train": "x", "template": "vicuna"}}, InstructConfig
        )
    with pytest.raises(ConfigError, match="'adapter' needs a lora section"):
        parse_config(
            {"model": {"path": "m"}, "data": {"train": "x"}, "lora": None, "save": "adapter"},
            InstructConfig,
        )
    cfg = parse_config({"model": {"path": "m"}, "data": {"train": "x"}}, InstructConfig)
    assert cfg.lora.r == 8 and cfg.data.packing and cfg.save == "adapter"


@pytest.mark.slow
def test_full_sft_memorizes_and_the_saved_model_round_trips(tmp_path, base_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    examples = [Example.from_alpaca(q, a) for q, a in PAIRS]
    write_jsonl(examples, tmp_path / "train.jsonl")
    # a bad line is skipped and counted
    with (tmp_path / "train.jsonl").open("a") as fh:
        fh.write("{not json\n")
    cfg = _cfg(
        tmp_path, base_dir, **{"data.val": str(tmp_path / "train.jsonl"), "data.on_error": "skip"}
    )
    result = run(cfg)
    res = json.loads((result.run_dir / "results.json").read_text())
    assert res["before"]["exact_match"] == 0.0
    assert res["after"]["exact_match"] == 1.0  # memorized every response
    assert res["after"]["token_accuracy"] == 1.0
    assert res["data"]["skipped_lines"] == 2  # once in train, once in val
    # packed rows attended example by example (auto picks varlen for Llama),
    # and the model is handed back with its own attention implementation
    assert res["data"]["packed_attention"] == "varlen"
    assert result.model.config._attn_implementation != "gradwise_varlen"
    assert [g["prediction"] for g in result.generations] == [a for _, a in PAIRS]
    assert (result.run_dir / "report.html").is_file()
    assert (result.run_dir / "config.yaml").is_file()
    assert len((result.run_dir / "generations.jsonl").read_text().splitlines()) == 4

    # the saved directory loads with from_pretrained and answers the same
    model = AutoModelForCausalLM.from_pretrained(result.run_dir / "model")
    tok = AutoTokenizer.from_pretrained(result.run_dir / "model")
    again = evaluate(model, tok, examples, get_template("chatml", tok), max_new_tokens=8)
    assert again.exact_match == 1.0
    ids = torch.tensor([tok("Reverse the word: CAT")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, result.model(ids).logits)


@pytest.mark.slow
def test_lora_adapter_is_saved_in_peft_format(tmp_path, base_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from gradwise.lora import load_adapter

    examples = [Example.from_alpaca(q, a) for q, a in PAIRS]
    write_jsonl(examples, tmp_path / "train.jsonl")
    cfg = _cfg(
        tmp_path,
        base_dir,
        lora={"r": 8, "alpha": 16},
        save="adapter",
        **{"training.epochs": 60, "data.val": str(tmp_path / "train.jsonl"), "data.packing": False},
    )
    result = sft(cfg, progress=False)
    assert result.results["after"]["exact_match"] >= 0.75
    assert result.results["parameters"]["trainable"] < result.results["parameters"]["total"] / 2
    adapter = result.run_dir / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {
        p.name for p in adapter.iterdir()
    }
    ids = torch.tensor([[5, 17, 42, 9, 3]])
    with torch.no_grad():
        ours = result.model(ids).logits
        peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter)
        torch.testing.assert_close(peft(input_ids=ids).logits, ours, rtol=1e-5, atol=1e-5)
        mine = load_adapter(AutoModelForCausalLM.from_pretrained(base_dir), adapter)
        torch.testing.assert_close(mine(ids).logits, ours, rtol=1e-5, atol=1e-5)


def test_sft_val_fraction_and_merged_lora_save(tmp_path, base_dir):
    # a couple of steps: the pipeline wires data, packing, LoRA and the Trainer
    from transformers import AutoModelForCausalLM

    examples = [Example.from_alpaca(q, a) for q, a in PAIRS * 3]
    write_jsonl(examples, tmp_path / "train.jsonl")
    cfg = _cfg(
        tmp_path,
        base_dir,
        lora={"r": 4, "alpha": 8},
        save="merged",
        **{
            "training.epochs": 1,
            "data.val_fraction": 0.25,
            "eval.before": False,
            "data.packed_attention": "block_mask",
        },
    )
    result = sft(cfg, progress=False)
    assert result.results["data"]["packed_attention"] == "block_mask"
    assert result.results["data"]["train_examples"] == 9
    assert result.results["data"]["val_examples"] == 3
    assert "before" not in result.results and result.results["after"]["n"] == 3
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    assert any(json.loads(line).get("type") == "epoch" for line in lines)
    # LoRA merged into plain weights: a stock model of the base architecture
    assert not (result.run_dir / "adapter").exists()
    assert not any("lora" in n for n, _ in result.model.named_parameters())
    reloaded = AutoModelForCausalLM.from_pretrained(result.run_dir / "model")
    ids = torch.tensor([[5, 17, 42, 9, 3]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, result.model(ids).logits)
        base = AutoModelForCausalLM.from_pretrained(base_dir)
        assert not torch.allclose(base(ids).logits, reloaded(ids).logits)  # it did train


def test_test_split_is_measured_and_val_only_validates(tmp_path, base_dir):
    # data.test: before/after and the generations are on the test items; data.val gives the
    # val_loss the guard watches (and picks the best epoch by), and is measured on nothing else
    with pytest.raises(ConfigError, match="data.test: 'v.jsonl' is also data.val"):
        parse_config(
            {"model": {"path": "m"}, "data": {"train": "t.jsonl", "val": "v.jsonl",
                                              "test": "v.jsonl"}},
            InstructConfig,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="data.test: 't.jsonl' is also data.train"):
        parse_config({"model": {"path": "m"}, "data": {"train": "t.jsonl", "test": "t.jsonl"}},
                     InstructConfig)  # fmt: skip
    examples = [Example.from_alpaca(q, a) for q, a in PAIRS]
    write_jsonl(examples * 2, tmp_path / "train.jsonl")
    write_jsonl(examples[:1], tmp_path / "val.jsonl")
    write_jsonl(examples[1:], tmp_path / "test.jsonl")
    cfg = _cfg(
        tmp_path,
        base_dir,
        **{
            "training.epochs": 2,
            "data.val": str(tmp_path / "val.jsonl"),
            "data.test": str(tmp_path / "test.jsonl"),
        },
    )
    result = sft(cfg, progress=False)
    data = result.results["data"]
    assert (data["train_examples"], data["val_examples"], data["test_examples"]) == (8, 1, 3)
    assert result.results["before"]["n"] == result.results["after"]["n"] == 3
    assert [g["prompt"] for g in result.generations] == [q for q, _ in PAIRS[1:]]
    epochs = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    assert sum("val_loss" in e for e in epochs if e.get("type") == "epoch") == 2
    # without data.test the held-out numbers are on val, as before
    result = sft(_cfg(tmp_path, base_dir, **{"training.epochs": 1,
                                             "data.val": str(tmp_path / "val.jsonl")}),
                 progress=False)  # fmt: skip
    assert result.results["after"]["n"] == 1 and result.results["data"]["test_examples"] is None
