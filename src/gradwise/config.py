"""Pydantic models of the YAML run configs, and their loading.

A config is plain YAML read with ``yaml.safe_load``, overridden by
``--set key.path=value`` pairs, then validated here. Every error names the
field path, the bad value and what is allowed, and suggests the closest key
for a misspelled one::

    >>> from gradwise.config import parse_config
    >>> cfg = parse_config({"name": "digits", "data": {"name": "digits"}})
    >>> cfg.optimizer.name, cfg.training.epochs
    ('adam', 20)
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from gradwise.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
HEADS = ("binary", "multiclass", "multilabel", "regression")


class Strict(BaseModel):
    """Base of every gradwise config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_betas(v: tuple[float, float]) -> tuple[float, float]:
    for i, b in enumerate(v):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"betas[{i}] must lie in [0, 1), got {b}")
    return v


def _check_device(v: str) -> str:
    if v not in ("auto", "cpu") and not v.startswith("cuda"):
        raise ValueError("device must be 'auto', 'cpu' or 'cuda[:N]'")
    return v


# Field types shared by the configs of every recipe.
Betas = Annotated[tuple[float, float], AfterValidator(_check_betas)]
Device = Annotated[str, AfterValidator(_check_device)]


class ModelConfig(Strict):
    """The network: an MLP whose input and output sizes come from the data."""

    kind: Literal["mlp"] = "mlp"
    hidden: list[int] = Field(default_factory=lambda: [128, 64])
    activation: str = "relu"
    activation_kw: dict[str, float] = Field(default_factory=dict)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batchnorm: bool = False

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
    ``path`` (a ``.csv`` with a ``target`` column, or a ``.npz``) is given.
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


class ProxConfig(Strict):
    """A proximal penalty applied after each optimizer step (exact zeros for L1)."""

    kind: Literal["l1", "l2", "elastic_net"] = "l1"
    lam: float = Field(ge=0.0)
    alpha: float | None = Field(None, ge=0.0, le=1.0)


class OptimizerConfig(Strict):
    """Optimizer name and hyperparameters, named as in ``torch.optim``."""

    name: str = "adam"
    lr: float | Literal["auto"] = 1e-3
    weight_decay: float = Field(0.0, ge=0.0)
    decoupled: bool | None = None
    decay_mask: str = "auto"
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    dampening: float = Field(0.0, ge=0.0, le=1.0)
    nesterov: bool = False
    betas: Betas = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    amsgrad: bool = False
    alpha: float = Field(0.99, ge=0.0, le=1.0)
    centered: bool = False
    prox: ProxConfig | None = None

    @field_validator("name")
    @classmethod
    def _known_optimizer(cls, v: str) -> str:
        if v not in OPTIMIZERS:
            match = difflib.get_close_matches(v, OPTIMIZERS, n=1)
            hint = f" (did you mean {match[0]!r}?)" if match else ""
            raise ValueError(f"unknown optimizer{hint}; allowed: {', '.join(OPTIMIZERS)}")
        return v

    @field_validator("lr")
    @classmethod
    def _positive_lr(cls, v: float | str) -> float | str:
        if v != "auto" and not v > 0:
            raise ValueError("lr must be > 0 or 'auto'")
        return v


class TrainingConfig(Strict):
    """Epochs, batches and the numerics of the training loop."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    grad_accum: int = Field(1, ge=1)
    clip_grad_norm: float | None = Field(None, gt=0.0)
    precision: Literal["fp32", "bf16"] = "fp32"
    device: Device = "auto"
    seed: int = 0


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


def _check_schedule(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """Build the schedule once on a nominal length so bad names/args fail at load time."""
    if v is None:
        return v
    from gradwise.schedules import schedule

    spec = dict(v)
    name = spec.pop("name", None)
    if not isinstance(name, str):
        raise ValueError("a schedule needs a 'name', e.g. {name: warmup_cosine, warmup: 0.05}")
    spec.pop("total_steps", None)
    try:
        schedule(name, total_steps=1000, **spec)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return v


def _check_run_name(v: str) -> str:
    if not v or "/" in v or "\\" in v or v in (".", ".."):
        raise ValueError("name must be a non-empty file name without '/'")
    return v


# A run's name is the name of its directory under runs_dir.
RunName = Annotated[str, AfterValidator(_check_run_name)]
# ``{name: ..., **arguments}`` of a schedule, checked by building it once.
ScheduleSpec = Annotated[dict[str, Any] | None, AfterValidator(_check_schedule)]


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
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    schedule: ScheduleSpec = None

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


# --- loading -----------------------------------------------------------------


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Names of the fields allowed at ``loc`` (a pydantic error location)."""
    cls: Any = model
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            break
        ann = field.annotation
        # unwrap Optional[Model]
        for arg in getattr(ann, "__args__", (ann,)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                ann = arg
        cls = ann
    return sorted(getattr(cls, "model_fields", {}))


def _describe(exc: ValidationError, model: type[BaseModel]) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = ".".join(str(p) for p in loc) or "<root>"
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(model, loc[:-1])
            match = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f" (did you mean {match[0]!r}?)" if match else ""
            lines.append(f"{path}: unknown field{hint}; allowed: {', '.join(allowed)}")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"{path}: {msg}{shown}")
    return "invalid config:\n  " + "\n  ".join(lines)


def parse_config(raw: dict[str, Any], model: type[BaseModel] = RunConfig) -> Any:
    """Validate a config dict; raise :class:`ConfigError` naming each bad field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of fields, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, model)) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides in place; values are parsed as YAML.

    >>> apply_overrides({"optimizer": {"lr": 0.1}}, ["optimizer.lr=0.01", "name=x"])
    {'optimizer': {'lr': 0.01}, 'name': 'x'}
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key.path=value, got {item!r}")
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
    return raw


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return raw if raw is not None else {}


def load_config(
    path: str | Path, overrides: list[str] | None = None, model: type[BaseModel] = RunConfig
) -> Any:
    """Read, override and validate a YAML config file."""
    raw = apply_overrides(read_yaml(path), list(overrides or []))
    return parse_config(raw, model)


def dump_config(cfg: BaseModel, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    tmp.replace(path)
