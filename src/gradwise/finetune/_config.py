"""The config of ``gradwise finetune``, defined in :mod:`gradwise.config` beside every run config.

Re-exported here so that ``gradwise.finetune._config`` imports keep working.
"""

from gradwise.config._finetune import (
    AugmentConfig,
    DiscriminativeConfig,
    FinetuneConfig,
    FinetuneDataConfig,
    PlanConfig,
    SourceConfig,
)

__all__ = [
    "AugmentConfig",
    "DiscriminativeConfig",
    "FinetuneConfig",
    "FinetuneDataConfig",
    "PlanConfig",
    "SourceConfig",
]
