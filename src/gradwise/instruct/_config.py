"""The config of ``gradwise instruct``, defined in :mod:`gradwise.config` beside every run config.

Re-exported here so that ``gradwise.instruct._config`` imports keep working.
"""

from gradwise.config._instruct import (
    InstructConfig,
    InstructDataConfig,
    InstructEvalConfig,
    InstructLoRAConfig,
    InstructTrainingConfig,
    ModelSource,
)

__all__ = [
    "InstructConfig",
    "InstructDataConfig",
    "InstructEvalConfig",
    "InstructLoRAConfig",
    "InstructTrainingConfig",
    "ModelSource",
]
