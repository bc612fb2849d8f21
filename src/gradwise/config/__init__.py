"""Pydantic models of the YAML run configs of every recipe, and their loading.

A config is plain YAML read with ``yaml.safe_load``, overridden by
``--set key.path=value`` pairs, then validated here. Every error names the
field path, the bad value and what is allowed, and suggests the closest key
for a misspelled one. The ``optimizer`` and ``schedule`` sections have one
model per registered optimizer alias and schedule, picked by ``name``, whose
fields are that entry's arguments::

    >>> from gradwise.config import parse_config
    >>> cfg = parse_config({"name": "digits", "data": {"name": "digits"}})
    >>> cfg.optimizer.name, cfg.training.epochs
    ('adam', 20)

Modules: ``_base`` (the strict base, shared field types), ``_tagged``
(models generated from a registry), ``_optimizer``, ``_schedule``, ``_run``
(``gradwise train``), ``_linear`` (``gradwise linear``), ``_load`` (YAML,
overrides, errors, dump). The finetune, instruct and sweep configs check
values with their own packages' code, so they are defined there and found
here too, by recipe: ``run_config("finetune")`` or ``gradwise.config.FinetuneConfig``.

>>> run_config("linear").__name__
'LinearConfig'
"""

import importlib
from typing import Any

from gradwise.config._base import Betas, Device, Lr, ProxConfig, RunName, Strict
from gradwise.config._linear import LinearConfig, LinearModelConfig
from gradwise.config._load import (
    apply_overrides,
    dump_config,
    load_config,
    parse_config,
    read_yaml,
    to_yaml,
)
from gradwise.config._optimizer import (
    OPTIMIZER_MODELS,
    OPTIMIZERS,
    OptimizerConfig,
    OptimizerConfigBase,
    optimizer_config,
)
from gradwise.config._run import (
    HEADS,
    CallbacksConfig,
    CheckpointConfig,
    DataConfig,
    DivergenceGuardConfig,
    EarlyStoppingConfig,
    ModelConfig,
    RunConfig,
    TrainingConfig,
)
from gradwise.config._schedule import (
    SCHEDULE_MODELS,
    ScheduleConfig,
    ScheduleConfigBase,
    schedule_config,
)
from gradwise.config._tagged import TaggedConfig

# Every recipe's run config: (module, class). Imported on first use, so that
# the packages whose code checks a config may import this one.
RUN_CONFIGS = {
    "train": ("gradwise.config._run", "RunConfig"),
    "linear": ("gradwise.config._linear", "LinearConfig"),
    "finetune": ("gradwise.finetune._config", "FinetuneConfig"),
    "instruct": ("gradwise.instruct._config", "InstructConfig"),
    "sweep": ("gradwise.sweep._config", "SweepConfig"),
}
_LAZY = {cls: module for module, cls in RUN_CONFIGS.values()}


def run_config(recipe: str) -> Any:
    """The config model of a recipe: ``train``, ``linear``, ``finetune``, ``instruct``, ``sweep``."""
    from gradwise.errors import unknown

    if recipe not in RUN_CONFIGS:
        raise unknown("recipe", recipe, RUN_CONFIGS)
    module, cls = RUN_CONFIGS[recipe]
    return getattr(importlib.import_module(module), cls)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gradwise.config' has no attribute {name!r}")


# Kept for configs written against the dict form: ``schedule: {name: ..., ...}``.
ScheduleSpec = ScheduleConfig | None

__all__ = [
    "HEADS",
    "OPTIMIZERS",
    "OPTIMIZER_MODELS",
    "SCHEDULE_MODELS",
    "Betas",
    "CallbacksConfig",
    "CheckpointConfig",
    "DataConfig",
    "Device",
    "DivergenceGuardConfig",
    "EarlyStoppingConfig",
    "LinearConfig",
    "LinearModelConfig",
    "Lr",
    "ModelConfig",
    "OptimizerConfig",
    "OptimizerConfigBase",
    "ProxConfig",
    "RUN_CONFIGS",
    "RunConfig",
    "RunName",
    "ScheduleConfig",
    "ScheduleConfigBase",
    "ScheduleSpec",
    "Strict",
    "TaggedConfig",
    "TrainingConfig",
    "apply_overrides",
    "dump_config",
    "load_config",
    "optimizer_config",
    "parse_config",
    "read_yaml",
    "run_config",
    "schedule_config",
    "to_yaml",
]
