"""The config of ``gradwise sweep``, defined in :mod:`gradwise.config` beside every run config.

Re-exported here so that ``gradwise.sweep._config`` imports keep working.
"""

from gradwise.config._sweep import (
    FORBIDDEN,
    METHODS,
    ParamSpec,
    SweepConfig,
    SweepSpec,
    check_path,
    check_values,
    parse_sweep,
    set_path,
    trial_raw,
)

__all__ = [
    "FORBIDDEN",
    "METHODS",
    "ParamSpec",
    "SweepConfig",
    "SweepSpec",
    "check_path",
    "check_values",
    "parse_sweep",
    "set_path",
    "trial_raw",
]
