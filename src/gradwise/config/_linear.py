"""The config of ``gradwise linear``: a regularized linear model on a table."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from gradwise.config._base import RunName, Strict
from gradwise.config._run import DataConfig

MODELS = ("lasso", "ridge", "elastic_net", "logistic")


class LinearModelConfig(Strict):
    """Which estimator, its penalty, and how lam is chosen (a number or ``cv``)."""

    kind: Literal["lasso", "ridge", "elastic_net", "logistic"] = "elastic_net"
    lam: float | Literal["cv"] = "cv"
    alpha: float = Field(0.5, ge=0.0, le=1.0)
    select: Literal["min", "1se"] = "1se"
    n_lams: int = Field(100, ge=2)
    eps: float = Field(1e-3, gt=0.0, lt=1.0)
    cv: int = Field(5, ge=2)
    standardize: bool = True
    fit_intercept: bool = True
    tol: float = Field(1e-6, gt=0.0)

    @field_validator("lam")
    @classmethod
    def _lam_non_negative(cls, v: float | str) -> float | str:
        if v != "cv" and v < 0:
            raise ValueError("lam must be >= 0 or 'cv'")
        return v


class LinearConfig(Strict):
    """A ``gradwise linear`` run."""

    name: RunName = "linear"
    runs_dir: str = "runs"
    data: DataConfig = Field(default_factory=lambda: DataConfig(val=0.0, standardize=False))
    model: LinearModelConfig = Field(default_factory=LinearModelConfig)
    compare: bool = True

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name
