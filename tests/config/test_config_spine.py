"""Every recipe's run config lives in gradwise.config (issue 14: "all run configs live together")."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

from gradwise import config
from gradwise.errors import ConfigError
from gradwise.finetune import Plan

RECIPES = ("train", "linear", "finetune", "instruct", "sweep")
MODULES = [
    "gradwise.config",
    "gradwise.config._finetune",
    "gradwise.config._instruct",
    "gradwise.config._sweep",
]


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_run_config_is_defined_in_the_config_package(recipe):
    model = config.run_config(recipe)
    assert model.__module__.startswith("gradwise.config._"), model.__module__
    assert getattr(config, model.__name__) is model


@pytest.mark.parametrize(
    "where, name",
    [
        ("gradwise.finetune._config", "FinetuneConfig"),
        ("gradwise.finetune._config", "FinetuneDataConfig"),
        ("gradwise.instruct", "InstructConfig"),
        ("gradwise.instruct._config", "InstructTrainingConfig"),
        ("gradwise.sweep", "SweepConfig"),
        ("gradwise.sweep", "parse_sweep"),
        ("gradwise.sweep._config", "trial_raw"),
        ("gradwise.sweep._config", "check_path"),
    ],
)
def test_the_old_import_paths_give_the_same_objects(where, name):
    moved = next(
        getattr(importlib.import_module(m), name)
        for m in MODULES[1:]
        if hasattr(importlib.import_module(m), name)
    )
    assert getattr(importlib.import_module(where), name) is moved


def test_importing_the_configs_imports_no_recipe_package():
    # finetune, lora and train code check values lazily, at validation time
    code = (
        "import sys, gradwise.config as c; c.run_config('finetune'); "
        "print(sorted({'.'.join(m.split('.')[:2]) for m in sys.modules if m.startswith('gradwise.')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)  # a printed list of str
    for pkg in ("finetune", "instruct", "sweep", "lora", "train", "recipes", "demo", "cli"):
        assert f"gradwise.{pkg}" not in loaded


def test_a_finetune_config_still_checks_values_with_the_finetune_code():
    raw = {"source": {"path": "x", "model": {"kind": "cnn", "hidden": 4, "activation": "relu"}},
           "data": {"name": "digits"}}  # fmt: skip
    with pytest.raises(ConfigError, match="unknown cnn model field 'activation'"):
        config.parse_config(raw, config.FinetuneConfig)
    bad = {**raw, "source": {"path": "x"}, "augment": {"transforms": [{"name": "spin"}]}}
    with pytest.raises(ConfigError, match=r"transforms\[0\]: .*spin"):
        config.parse_config(bad, config.FinetuneConfig)
    plan = config.parse_config(
        {**raw, "source": {"path": "x"}, "plan": {"kind": "gradual", "every": 2}},
        config.FinetuneConfig,
    ).plan.to_plan()
    assert isinstance(plan, Plan)
    assert repr(plan) == repr(Plan.from_dict({"kind": "gradual", "every": 2}))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
