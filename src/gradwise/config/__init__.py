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
(models generated from a registry), ``_optimizer``, ``_schedule``, and one
module per recipe: ``_run`` (``gradwise train``), ``_linear``, ``_finetune``,
``_instruct``, ``_sweep``; ``_load`` (YAML, overrides, errors, dump). Values
that a package's own code checks (a finetune plan, an augmentation, a LoRA
section) are checked by importing that code when a config is validated, so
importing this package imports only the optimizer and schedule registries,
never finetune, instruct, sweep, lora or train. A recipe's model is found by
name too::

>>> run_config("linear").__name__
'LinearConfig'
"""

from typing import Any

from pydantic import BaseModel

from gradwise.config._base import Betas, Device, Lr, ProxConfig, RunName, Strict
from gradwise.config._finetune import FinetuneConfig
from gradwise.config._instruct import InstructConfig
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
from gradwise.config._sweep import SweepConfig, parse_sweep
from gradwise.config._tagged import TaggedConfig

# Every recipe's run config, by the name of its command.
RUN_CONFIGS: dict[str, type[BaseModel]] = {
    "train": RunConfig,
    "linear": LinearConfig,
    "finetune": FinetuneConfig,
    "instruct": InstructConfig,
    "sweep": SweepConfig,
}


def run_config(recipe: str) -> Any:
    """The config model of a recipe: ``train``, ``linear``, ``finetune``, ``instruct``, ``sweep``."""
    from gradwise.errors import unknown

    if recipe not in RUN_CONFIGS:
        raise unknown("recipe", recipe, RUN_CONFIGS)
    return RUN_CONFIGS[recipe]


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
    "FinetuneConfig",
    "InstructConfig",
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
    "SweepConfig",
    "TaggedConfig",
    "TrainingConfig",
    "apply_overrides",
    "dump_config",
    "load_config",
    "optimizer_config",
    "parse_config",
    "parse_sweep",
    "read_yaml",
    "run_config",
    "schedule_config",
    "to_yaml",
]
