"""LoRAConfig validation, dict round trip and per-module values."""

from __future__ import annotations

import doctest
import importlib
import math

import pytest

from gradwise.errors import ConfigError
from gradwise.lora import LoRAConfig


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"r": 0}, "r must be a positive integer, got 0"),
        ({"r": 2.5}, "r must be a positive integer"),
        ({"r": True}, "r must be a positive integer"),
        ({"alpha": -1}, "alpha must be a positive number"),
        ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
        ({"target_modules": []}, "target_modules must name at least one module"),
        ({"target_modules": "(unclosed"}, "target_modules: '\\(unclosed' is not a valid regular expression"),
        ({"target_modules": ["q", 3]}, "target_modules must be a list of non-empty module names"),
        ({"bias": "lora"}, r"unknown bias 'lora' \(did you mean 'lora_only'\?\); allowed: all, lora_only, none"),
        ({"init": "gauss"}, r"unknown init 'gauss' \(did you mean 'gaussian'\?\)"),
        ({"modules_to_save": "head"}, "modules_to_save must be a list of module names"),
        ({"rank_pattern": {"q": 0}}, r"rank_pattern\['q'\] must be a positive integer"),
        ({"alpha_pattern": {"[": 2}}, r"alpha_pattern\['\['\]: '\[' is not a valid regular expression"),
        ({"use_rslora": "yes"}, "use_rslora must be true or false"),
        ({"task_type": "CAUSAL"}, r"unknown task_type 'CAUSAL' \(did you mean 'CAUSAL_LM'\?\)"),
    ],
)
def test_invalid_fields_name_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        LoRAConfig(**kwargs)


def test_from_dict_rejects_unknown_keys_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown LoRA config field 'dropuot' \(did you mean 'dropout'\?\)"):
        LoRAConfig.from_dict({"dropuot": 0.1})
    with pytest.raises(ConfigError, match=r"'lora_alpha' \(PEFT's name; gradwise calls it 'alpha'\)"):
        LoRAConfig.from_dict({"lora_alpha": 32})
    with pytest.raises(ConfigError, match="must be a mapping"):
        LoRAConfig.from_dict(["r", 8])


def test_dict_round_trip_and_normalisation():
    cfg = LoRAConfig.from_dict({"r": 4, "target_modules": ["q", "v"], "modules_to_save": ["head"]})
    assert cfg.target_modules == ("q", "v") and cfg.modules_to_save == ("head",)
    assert LoRAConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["target_modules"] == ["q", "v"]


def test_scaling_rank_and_alpha_patterns():
    cfg = LoRAConfig(r=8, alpha=16, rank_pattern={r"layer\.0\..*query": 4}, alpha_pattern={"value": 4})
    assert cfg.rank("encoder.layer.0.attention.query") == 4
    assert cfg.rank("encoder.layer.10.attention.query") == 8  # "layer.0." does not match layer.10
    assert cfg.scaling("encoder.layer.0.attention.query") == 16 / 4
    assert cfg.scaling("x.value") == 4 / 8
    assert cfg.scaling("x.xvalue") == 16 / 8  # matches only at a dot boundary
    assert LoRAConfig(r=16, alpha=8, use_rslora=True).scaling("q") == pytest.approx(8 / math.sqrt(16))


@pytest.mark.parametrize("module", ["gradwise.lora", "gradwise.lora._config", "gradwise.lora._inject",
                                    "gradwise.lora._model", "gradwise.lora._io", "gradwise.lora._layers"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
