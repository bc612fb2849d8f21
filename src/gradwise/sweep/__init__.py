"""Sweeps over run configs on Optuna: grid, random and TPE search, pruning, reports.

A sweep config is a ``gradwise train`` config plus a ``sweep:`` section
(:class:`SweepSpec`). :func:`run_sweep` runs its trials, each one an ordinary
training run in ``runs/NAME/trials/trial-NNNN``, in an Optuna study stored in
``runs/NAME/study.db`` (or a shared database URL), and writes
``runs/NAME/report.html``. Re-running continues the study.

Example:
    >>> from gradwise.sweep import parse_sweep
    >>> cfg = parse_sweep({
    ...     "data": {"name": "iris"},
    ...     "sweep": {"method": "grid", "metric": "val_accuracy",
    ...               "params": {"optimizer.lr": {"values": [0.001, 0.01]}}},
    ... })
    >>> cfg.sweep.direction, cfg.sweep.total_trials
    ('maximize', 2)

Optuna is imported only when a sweep runs (the ``sweep`` extra). See
``docs/sweep.md``.
"""

from gradwise.sweep._config import ParamSpec, SweepConfig, SweepSpec, parse_sweep
from gradwise.sweep._report import plot_heatmap, write_sweep_report
from gradwise.sweep._result import SweepResult
from gradwise.sweep._study import (
    load_sweep_config,
    open_study,
    report_sweep,
    run_sweep,
    run_sweep_file,
)
from gradwise.sweep._trial import TrialPruning

__all__ = [
    "ParamSpec",
    "SweepConfig",
    "SweepResult",
    "SweepSpec",
    "TrialPruning",
    "load_sweep_config",
    "open_study",
    "parse_sweep",
    "plot_heatmap",
    "report_sweep",
    "run_sweep",
    "run_sweep_file",
    "write_sweep_report",
]
