"""What a sweep produced (its own module: the study runs it, the report fills it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SweepResult:
    """What a sweep produced.

    Attributes:
        run_dir: ``runs/NAME``: ``study.db``, ``sweep.yaml``, ``trials/``,
            ``plots/``, ``best_config.yaml`` and ``report.html``.
        study_name, storage: the Optuna study and its database (password hidden).
        metric, direction: the objective.
        best_trial, best_value, best_params: the best finished trial (None if none).
        best_config: the full run config of the best trial (a dict).
        trials: one row per trial: number, state, value, params, epochs, seconds.
        ran: trials this call trained (0 when the study was already complete).
        report: the HTML report.
    """

    run_dir: Path
    study_name: str
    storage: str
    metric: str
    direction: str
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    best_config: dict[str, Any] | None
    trials: list[dict[str, Any]] = field(default_factory=list)
    ran: int = 0
    report: Path | None = None
