"""``gradwise instruct`` takes the optimizer and schedule sections of ``gradwise train``."""

from __future__ import annotations

import pytest
import torch

from gradwise.config import parse_config, to_yaml
from gradwise.errors import ConfigError
from gradwise.instruct import Example, InstructConfig, write_jsonl

BASE = {"model": {"path": "m"}, "data": {"train": "x"}}


def test_any_optimizer_alias_and_schedule_by_name():
    cfg = parse_config({**BASE, "optimizer": {"name": "lion", "lr": 1e-4, "betas": [0.9, 0.98]},
                        "schedule": {"name": "linear_warmup", "warmup_steps": 3}}, InstructConfig)  # fmt: skip
    assert type(cfg.optimizer).__name__ == "LionOptimizerConfig"
    assert cfg.optimizer.options() == {"lr": 1e-4, "betas": (0.9, 0.98)}
    assert cfg.schedule.name == "linear_warmup"
    # the saved form loads back to the same config
    again = parse_config(__import__("yaml").safe_load(to_yaml(cfg)), InstructConfig)
    assert to_yaml(again) == to_yaml(cfg)
    with pytest.raises(ConfigError, match="optimizer.momentum"):
        parse_config({**BASE, "optimizer": {"name": "adamw", "momentum": 0.9}}, InstructConfig)


def test_defaults_and_the_older_form_run_adamw_with_warmup_cosine():
    default = parse_config(BASE, InstructConfig)
    older = parse_config({**BASE, "optimizer": {"lr": 1e-3, "warmup": 0.05}}, InstructConfig)
    for cfg in (default, older):
        assert cfg.optimizer.name == "adamw"
        assert cfg.optimizer.options() == {"lr": 1e-3, "weight_decay": 0.0}
        assert cfg.schedule.name == "warmup_cosine" and cfg.schedule.options() == {"warmup": 0.05}
    assert parse_config({**BASE, "schedule": None}, InstructConfig).schedule is None
    with pytest.raises(ConfigError, match="not both"):
        parse_config({**BASE, "optimizer": {"warmup": 0.1}, "schedule": {"name": "cosine"}}, InstructConfig)
    with pytest.raises(ConfigError, match="'auto'"):
        parse_config({**BASE, "optimizer": {"name": "adam", "lr": "auto"}}, InstructConfig)


def test_the_run_steps_with_the_configured_optimizer(tmp_path, tokenizer, model_factory, monkeypatch):
    # SGD without momentum on a tiny LM: the recipe hands the config to optim.build
    import gradwise.recipes.instruct as recipe

    built = []
    real = recipe.build_optimizer

    def spy(cfg, params, lr=None):
        built.append(real(cfg, params, lr))
        return built[-1]

    monkeypatch.setattr(recipe, "build_optimizer", spy)
    write_jsonl([Example.from_alpaca("Spell out: DOG", "D-O-G")] * 4, tmp_path / "train.jsonl")
    cfg = parse_config({
        "name": "sgd", "runs_dir": str(tmp_path), "model": {"path": "unused"},
        "data": {"train": str(tmp_path / "train.jsonl"), "template": "chatml", "max_length": 32},
        "lora": None, "save": "none", "optimizer": {"name": "sgd", "lr": 0.05}, "schedule": None,
        "training": {"epochs": 1, "batch_size": 4, "device": "cpu", "progress": False, "checkpoint": False},
        "eval": {"before": False},
    }, InstructConfig)  # fmt: skip
    model = model_factory(tokenizer, "llama", hidden=16, layers=1, heads=2, seed=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = recipe.sft(cfg, model=model, tokenizer=tokenizer, progress=False)
    (opt,) = built
    assert [g["lr"] for g in opt.param_groups] == [0.05] and opt.param_groups[0]["momentum"] == 0.0
    assert type(opt.leaves[0]).__name__ == "AddL2"  # sgd's chain, not adamw's
    assert any(not torch.equal(before[n], p) for n, p in result.model.named_parameters())
