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
(``gradwise train``), ``_load`` (YAML, overrides, errors, dump). The other
recipes' configs sit beside their code and are re-exported here, so that every
run config is found in one place.
"""

from gradwise.config._base import Betas, Device, Lr, ProxConfig, RunName, Strict
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
    "Lr",
    "ModelConfig",
    "OptimizerConfig",
    "OptimizerConfigBase",
    "ProxConfig",
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
    "schedule_config",
    "to_yaml",
]
