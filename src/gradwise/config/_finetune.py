"""The config of ``gradwise finetune``: a strict pydantic model of its YAML.

Example (digits 5–9 on a CNN pretrained on digits 0–4)::

    name: digits-gradual
    source:
      path: runs/pretrain/checkpoints
      model: {kind: cnn, in_shape: [1, 8, 8], channels: [16, 32], hidden: 64}
    data: {name: digits, classes: [5, 6, 7, 8, 9], standardize: false, scale: 0.0625}
    source_data: {name: digits, classes: [0, 1, 2, 3, 4], standardize: false, scale: 0.0625}
    plan: {kind: gradual, every: 2}
    discriminative: {factor: 2.6}
    optimizer: {name: adamw, lr: 0.003, weight_decay: 0.01}
    schedule: {name: slanted_triangular, cut_frac: 0.2}
    augment:
      seed: 0
      transforms:
        - {name: random_crop, padding: 1}
        - {name: gaussian_noise, std: 0.05}
    training: {epochs: 8, batch_size: 32}
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from gradwise.config._base import RunName, Strict
from gradwise.config._optimizer import OptimizerConfig, optimizer_config
from gradwise.config._run import CallbacksConfig, DataConfig, TrainingConfig
from gradwise.config._schedule import ScheduleConfig

if TYPE_CHECKING:
    from gradwise.finetune import Plan

# The values are checked by the finetune package's own code (model kinds, plans,
# augmentations), imported when a config is validated: importing this module
# never imports finetune, so finetune may import its config from here.


class SourceConfig(Strict):
    """The pretrained model: a Hugging Face directory, a gradwise run, checkpoint or weights file."""

    path: str
    model: dict[str, Any] | None = None
    checkpoint: Literal["latest", "best"] = "latest"
    pooling: Literal["mean", "cls"] = "mean"
    max_length: int = Field(64, ge=2)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        from gradwise.finetune._source import _CNN_KEYS, _MLP_KEYS, MODEL_KINDS

        kind = v.get("kind", "mlp")
        if kind not in MODEL_KINDS:
            raise ValueError(f"model.kind must be one of {', '.join(MODEL_KINDS)}, got {kind!r}")
        allowed = (_MLP_KEYS if kind == "mlp" else _CNN_KEYS) | {"kind"}
        extra = sorted(set(v) - allowed)
        if extra:
            raise ValueError(f"unknown {kind} model field {extra[0]!r}; allowed: {', '.join(sorted(allowed))}")
        return v


class FinetuneDataConfig(DataConfig):
    """A dataset as in ``gradwise train``, plus a class filter, a row cap and a pixel scale.

    ``name: sentences`` is the shipped sentence set (text, for a Hugging Face source).
    """

    classes: list[int | str] | None = None
    max_train: int | None = Field(None, ge=1)
    scale: float | None = Field(None, gt=0.0)

    @field_validator("classes")
    @classmethod
    def _two_classes(cls, v: list[Any] | None) -> list[Any] | None:
        if v is not None and (len(v) < 2 or len(set(map(str, v))) != len(v)):
            raise ValueError(f"classes must list at least two distinct labels, got {v!r}")
        return v


class PlanConfig(Strict):
    """What trains when (see :class:`gradwise.finetune.Plan`) and how frozen groups behave."""

    kind: Literal["full", "head_only", "gradual", "lora", "stages"] = "full"
    unit: Literal["epoch", "step"] = "epoch"
    every: int = Field(1, ge=1)
    max_groups: int | None = Field(None, ge=1)
    also: list[str] = Field(default_factory=list)
    stages: list[dict[str, Any]] = Field(default_factory=list)
    groups: list[str] | dict[str, str | list[str]] | None = None
    batchnorm: Literal["eval", "train", "stats"] = "eval"
    restart_schedule: bool = False

    @model_validator(mode="after")
    def _valid_plan(self) -> PlanConfig:
        if self.kind != "stages" and self.stages:
            raise ValueError(f"stages are given but kind is {self.kind!r}; set kind: stages")
        if self.kind != "gradual" and (self.max_groups is not None or self.also or self.every != 1):
            raise ValueError("every, max_groups and also apply to kind: gradual only")
        self.to_plan()  # a bad stage fails at load time, naming it
        return self

    def to_plan(self) -> Plan:
        """The :class:`gradwise.finetune.Plan` this section describes."""
        from gradwise.finetune._plan import Plan

        d: dict[str, Any] = {"kind": self.kind, "unit": self.unit}
        if self.kind == "gradual":
            d.update(every=self.every, max_groups=self.max_groups, also=self.also)
        if self.kind == "stages":
            d["stages"] = self.stages
        return Plan.from_dict(d)


class DiscriminativeConfig(Strict):
    """Per-group learning rates: ``lr / factor^(G-1-g)``, or ``lr · decay^(G-1-g)``.

    With ``head_lr`` the head gets that rate and ``optimizer.lr`` is the top body group's.
    """

    factor: float = Field(2.6, gt=0.0)
    decay: float | None = Field(None, gt=0.0, le=1.0)
    head_lr: float | None = Field(None, gt=0.0)


class AugmentConfig(Strict):
    """Training-batch augmentations, in order; ``image_shape`` defaults to the data's."""

    seed: int = 0
    transforms: list[dict[str, Any]] = Field(default_factory=list)
    image_shape: list[int] | None = None

    @field_validator("transforms")
    @classmethod
    def _known_transforms(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from gradwise.finetune._augment import augmentation

        for i, t in enumerate(v):
            try:
                augmentation(t)
            except ValueError as exc:
                raise ValueError(f"transforms[{i}]: {exc}") from None
        return v


class FinetuneConfig(Strict):
    """A whole ``gradwise finetune`` run; written back as ``runs/NAME/config.yaml``."""

    name: RunName = "finetune"
    runs_dir: str = "runs"
    source: SourceConfig
    data: FinetuneDataConfig
    source_data: FinetuneDataConfig | None = None
    head: Literal["binary", "multiclass", "multilabel", "regression"] | None = None
    plan: PlanConfig = Field(default_factory=PlanConfig)
    discriminative: DiscriminativeConfig | None = None
    optimizer: OptimizerConfig = Field(default_factory=lambda: optimizer_config(name="adamw", lr=1e-3))
    schedule: ScheduleConfig | None = None
    augment: AugmentConfig | None = None
    lora: dict[str, Any] | None = None
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(epochs=5, batch_size=32))
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    save_model: bool = True

    @field_validator("lora")
    @classmethod
    def _valid_lora(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            from gradwise.lora import LoRAConfig

            LoRAConfig.from_dict(v)
        return v

    @field_validator("optimizer")
    @classmethod
    def _fixed_lr(cls, v: Any) -> Any:
        if v.lr == "auto":
            raise ValueError("lr 'auto' is not supported by finetune; give a number (see gradwise lr-find)")
        return v

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name
