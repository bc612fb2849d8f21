"""The config of ``gradwise instruct``: a strict pydantic model of its YAML.

A minimal config names a model directory and a data file::

    name: tune
    model: {path: runs/base}
    data: {train: data/train.jsonl, template: alpaca}
    lora: {r: 8, alpha: 16}

Everything else has defaults; ``lora: null`` means full fine-tuning. The
``optimizer`` and ``schedule`` sections are those of ``gradwise train``: any
optimizer alias by ``name`` (default AdamW, lr 1e-3, no weight decay) and any
schedule (default warmup-cosine with 5% warmup; ``schedule: null`` for a
constant lr).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from gradwise.config._base import Device, Distributed, RunName, Strict, Threads
from gradwise.config._optimizer import OptimizerConfig, optimizer_config
from gradwise.config._schedule import ScheduleConfig, schedule_config


class ModelSource(Strict):
    """The base model: a local Hugging Face directory (model + tokenizer)."""

    path: str
    tokenizer: str | None = None  # defaults to ``path``
    dtype: Literal["float32", "bfloat16"] = "float32"
    attn_implementation: Literal["sdpa", "eager"] | None = None


class InstructDataConfig(Strict):
    """Where the examples come from and how they become token batches."""

    train: str
    val: str | None = None
    # held-out items that before/after are measured on, never trained nor used to pick
    # the epoch (the guard watches val); without it they are measured on val
    test: str | None = None
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    format: Literal["auto", "alpaca", "chat", "sharegpt"] = "auto"
    on_error: Literal["raise", "skip"] = "raise"
    # the tokenizer's own chat template, else ChatML with a warning (a base model)
    template: Literal["alpaca", "chatml", "tokenizer", "auto"] = "auto"
    max_length: int = Field(512, ge=8)
    truncation: Literal["keep_response", "keep_start", "keep_end"] = "keep_response"
    assistant_turns: Literal["all", "last"] = "all"
    unstable: Literal["split", "error"] = "split"
    close_turns: bool = True
    packing: bool = True
    packed_attention: Literal["auto", "varlen", "block_mask", "position_ids"] = "auto"
    seed: int = 0

    @model_validator(mode="after")
    def _test_is_its_own(self) -> InstructDataConfig:
        for other in ("train", "val"):
            if self.test is not None and self.test == getattr(self, other):
                raise ValueError(
                    f"data.test: {self.test!r} is also data.{other}; the test file must hold "
                    "items of its own (never trained, never used to pick the epoch)"
                )
        return self


class InstructLoRAConfig(Strict):
    """LoRA adapter settings (see :class:`gradwise.lora.LoRAConfig`)."""

    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0.0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: str | list[str] = "all-linear"
    use_rslora: bool = False


def _default_optimizer() -> Any:
    return optimizer_config(name="adamw", lr=1e-3, weight_decay=0.0)


def _default_schedule() -> Any:
    return schedule_config(name="warmup_cosine", warmup=0.05)


def _legacy_optimizer(raw: Any) -> Any:
    """``optimizer: {lr, weight_decay, betas, warmup}`` without a ``name``: AdamW as before.

    The older form named no optimizer and held the warmup of a warmup-cosine
    schedule; it becomes ``{name: adamw, weight_decay: 0.0, ...}`` and
    ``schedule: {name: warmup_cosine, warmup: ...}``, so it runs as it did.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("optimizer"), dict):
        return raw
    opt = dict(raw["optimizer"])
    if "name" in opt:
        return raw
    out = dict(raw)
    if "warmup" in opt:
        if "schedule" in out:
            raise ValueError("optimizer.warmup: give the warmup in the schedule section, not both")
        out["schedule"] = {"name": "warmup_cosine", "warmup": opt.pop("warmup")}
    out["optimizer"] = {"name": "adamw", "weight_decay": 0.0, **opt}
    return out


class InstructTrainingConfig(Strict):
    """The training loop (passed to :class:`gradwise.train.Trainer`)."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    clip_grad_norm: float | None = Field(1.0, gt=0.0)
    precision: Literal["fp32", "bf16"] = "fp32"
    device: Device = "auto"
    seed: int = 0
    distributed: Distributed = "auto"
    threads: Threads = "auto"

    checkpoint: bool = True
    guard: bool = True  # DivergenceGuard: roll back and lower the lr on NaN/inf or a loss spike
    progress: bool = True
    log_every: int = Field(10, ge=1)


class InstructEvalConfig(Strict):
    """Held-out evaluation: exact match and response-token accuracy."""

    max_examples: int | None = Field(200, ge=1)
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(32, ge=1)
    before: bool = True  # also evaluate the base model, for a before/after comparison


class InstructConfig(Strict):
    """A whole ``gradwise instruct`` run; written back as ``runs/NAME/config.yaml``.

    >>> cfg = InstructConfig.model_validate(
    ...     {"model": {"path": "base"}, "data": {"train": "train.jsonl"}})
    >>> cfg.lora.r, cfg.data.template, cfg.save
    (8, 'auto', 'adapter')
    """

    name: RunName = "instruct"
    runs_dir: str = "runs"
    model: ModelSource
    data: InstructDataConfig
    lora: InstructLoRAConfig | None = Field(default_factory=InstructLoRAConfig)
    optimizer: OptimizerConfig = Field(default_factory=_default_optimizer)
    schedule: ScheduleConfig | None = Field(default_factory=_default_schedule)
    training: InstructTrainingConfig = Field(default_factory=InstructTrainingConfig)
    eval: InstructEvalConfig = Field(default_factory=InstructEvalConfig)
    save: Literal["adapter", "merged", "none"] = "adapter"

    _legacy = model_validator(mode="before")(staticmethod(_legacy_optimizer))

    @model_validator(mode="after")
    def _adapter_needs_lora(self) -> InstructConfig:
        if self.optimizer.lr == "auto":
            raise ValueError("optimizer.lr: 'auto' (lr_find) is for gradwise train; give a number")
        if self.save == "adapter" and self.lora is None:
            raise ValueError(
                "save: 'adapter' needs a lora section; use 'merged' for full fine-tuning"
            )
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name
