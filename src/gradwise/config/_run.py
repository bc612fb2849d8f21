"""The config of ``gradwise train`` and the sections other recipes reuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from gradwise.config._base import Device, Distributed, RunName, Strict, Threads
from gradwise.config._optimizer import OptimizerConfig, optimizer_config
from gradwise.config._schedule import ScheduleConfig

HEADS = ("binary", "multiclass", "multilabel", "regression")


class ModelConfig(Strict):
    """The network: an MLP whose input and output sizes come from the data."""

    kind: Literal["mlp"] = "mlp"
    hidden: list[int] = Field(default_factory=lambda: [128, 64])
    activation: str = "relu"
    activation_kw: dict[str, float] = Field(default_factory=dict)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batchnorm: bool = False

    @field_validator("activation")
    @classmethod
    def _known_activation(cls, v: str) -> str:
        from gradwise.errors import unknown
        from gradwise.nn._activations import ACTIVATIONS

        if v not in ACTIVATIONS:
            raise unknown("activation", v, ACTIVATIONS)
        return v

    @field_validator("hidden")
    @classmethod
    def _positive_widths(cls, v: list[int]) -> list[int]:
        bad = [w for w in v if w <= 0]
        if bad:
            raise ValueError(f"every hidden width must be a positive integer, got {bad[0]}")
        return v


class DataConfig(Strict):
    """Where the data comes from and how it is split.

    Exactly one of ``name`` (a built-in dataset of :mod:`gradwise.data`) and
    ``path`` (a ``.csv`` whose target column ``target`` names, or a ``.npz``)
    is given.
    """

    name: str | None = None
    path: str | None = None
    target: str | None = None
    task: Literal["binary", "multiclass", "multilabel", "regression"] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    val: float = Field(0.15, ge=0.0, lt=1.0)
    test: float = Field(0.15, ge=0.0, lt=1.0)
    standardize: bool = True
    seed: int = 0


class TrainingConfig(Strict):
    """Epochs, batches and the numerics of the training loop."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    grad_accum: int = Field(1, ge=1)
    clip_grad_norm: float | None = Field(None, gt=0.0)
    precision: Literal["fp32", "bf16"] = "fp32"
    device: Device = "auto"
    seed: int = 0
    distributed: Distributed = "auto"
    threads: Threads = "auto"


class EarlyStoppingConfig(Strict):
    """Stop when the monitored metric has not improved for ``patience`` epochs."""

    monitor: str = "val_loss"
    mode: Literal["min", "max", "auto"] = "auto"
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0.0)
    restore_best: bool = True


class CheckpointConfig(Strict):
    """Atomic, resumable checkpoints under ``runs/NAME/checkpoints``."""

    enabled: bool = True
    every_n_steps: int | None = Field(None, ge=1)
    every_epoch: bool = True
    keep: int = Field(2, ge=1)


class DivergenceGuardConfig(Strict):
    """Roll back and lower the lr on NaN/Inf or a loss spike (on by default)."""

    enabled: bool = True
    snapshot_every: int = Field(50, ge=1)
    factor: float = Field(0.5, gt=0.0, lt=1.0)
    max_retries: int = Field(5, ge=0)
    loss_factor: float | None = Field(2.0, gt=1.0)
    window: int = Field(50, ge=1)
    patience: int = Field(2, ge=1)


class CallbacksConfig(Strict):
    """Which callbacks a run uses."""

    progress: bool = True
    log_every: int = Field(10, ge=1)
    early_stopping: EarlyStoppingConfig | None = None
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    divergence_guard: DivergenceGuardConfig = Field(default_factory=DivergenceGuardConfig)
    tensorboard: bool = False


class RunConfig(Strict):
    """A whole ``gradwise train`` run: written back as ``runs/NAME/config.yaml``.

    ``schedule`` is a learning-rate schedule of :mod:`gradwise.schedules` by
    name, stepped every optimizer step; step-count arguments may be fractions
    of the run's total steps: ``{name: warmup_cosine, warmup: 0.05}``.
    """

    name: RunName = "run"
    runs_dir: str = "runs"
    head: Literal["binary", "multiclass", "multilabel", "regression"] | None = None
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    optimizer: OptimizerConfig = Field(default_factory=lambda: optimizer_config(name="adam"))
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    schedule: ScheduleConfig | None = None

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


