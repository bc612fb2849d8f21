"""The config of ``gradwise sweep``: a run config plus a ``sweep:`` section, validated strictly.

A sweep file is a ``gradwise train`` config (the base every trial starts
from) with one more section::

    sweep:
      method: grid            # grid | random | tpe
      metric: val_accuracy    # a train_* or val_* key of the epoch record
      params:
        optimizer.lr: {values: [0.0003, 0.001, 0.003]}
        model.activation: {values: [relu, tanh]}
        optimizer.weight_decay: {type: float, low: 1.0e-5, high: 1.0e-1, log: true}

Every parameter path is checked against the run config's fields, and every
value a parameter can take is checked by building the run config it gives,
so a typo fails before the first trial runs.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gradwise.config._base import Strict
from gradwise.config._load import parse_config
from gradwise.config._run import RunConfig
from gradwise.config._tagged import union_members
from gradwise.errors import ConfigError, closest

METHODS = ("grid", "random", "tpe")
FORBIDDEN = ("name", "runs_dir")  # the sweep owns the layout of its trials' run dirs


class _Spec(Strict):
    # The validators below fill derived fields in by assignment; validating
    # each assignment would run them again.
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class ParamSpec(_Spec):
    """One swept parameter: a list of ``values``, or a ``low``..``high`` range.

    ``type`` is ``float`` (default for a range), ``int`` or ``categorical``
    (implied by ``values``); ``log`` samples a range on a log scale (``low >
    0``); ``step`` makes a range discrete. A grid sweep needs ``values``.

    Example:
        >>> ParamSpec(low=1e-4, high=1e-1, log=True).type
        'float'
        >>> ParamSpec(values=["relu", "tanh"]).type
        'categorical'
    """

    type: Literal["float", "int", "categorical"] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _shape(self) -> ParamSpec:
        if self.values is not None:
            extra = [k for k in ("low", "high", "step") if getattr(self, k) is not None]
            if extra or self.log:
                raise ValueError(
                    f"give either 'values' or a range, not both (got {extra or 'log'})"
                )
            if self.type not in (None, "categorical"):
                raise ValueError(
                    f"type {self.type!r} takes low/high; a list of values is categorical"
                )
            if not self.values:
                raise ValueError("values must not be empty")
            keys = [json.dumps(v, sort_keys=True) for v in self.values]
            dup = next((v for v, k in zip(self.values, keys) if keys.count(k) > 1), None)
            if dup is not None:
                raise ValueError(f"value {dup!r} is listed twice")
            self.type = "categorical"
            return self
        if self.type == "categorical":
            raise ValueError("a categorical parameter needs 'values'")
        if self.low is None or self.high is None:
            raise ValueError("a range needs both 'low' and 'high' (or give 'values')")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("'step' and 'log: true' cannot be combined")
        self.type = self.type or "float"
        if self.type == "int":
            for k in ("low", "high", "step"):
                v = getattr(self, k)
                if v is not None and v != int(v):
                    raise ValueError(f"an int parameter needs an integer {k}, got {v}")
        return self

    def candidates(self) -> list[Any]:
        """The values to check up front: every listed value, or both ends of a range."""
        if self.values is not None:
            return list(self.values)
        if self.type == "int" and self.low is not None and self.high is not None:  # a range
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


def _did_you_mean(metric: str) -> str:
    """`` (did you mean 'val_loss'?)`` when ``metric`` is close to a known epoch-record key."""
    import difflib

    from gradwise.train.metrics import METRICS

    prefix = "val_" if metric.startswith("val_") else "train_"
    known = [prefix + k for k in (*METRICS, "loss")]
    match = difflib.get_close_matches(metric, known, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


class SweepSpec(_Spec):
    """The ``sweep:`` section: search method, objective, parameters, pruning, storage.

    Attributes:
        method: ``grid`` (every combination of the listed values), ``random``
            or ``tpe`` (Optuna's tree-structured Parzen estimator).
        n_trials: how many trials the study holds when done (re-running a
            sweep continues to this count); a grid defaults to its size.
        metric: the epoch-record key to optimise (``val_accuracy``,
            ``val_loss``, ``train_loss``...); the trial's value is that metric
            of the final model, measured in eval mode.
        direction: ``maximize`` or ``minimize``; default from the metric's name.
        params: parameter path in the run config -> :class:`ParamSpec`.
        pruner: ``median`` stops a trial whose metric at an epoch is worse
            than the median of earlier trials at that epoch; ``none``.
        prune_warmup: epochs every trial runs before it may be pruned.
        prune_startup: finished trials before pruning starts.
        seed: seed of the samplers (trial k draws from ``(seed, k)``).
        storage: a database URL shared by workers on several machines
            (``postgresql://...``); default: ``RUN_DIR/study.db`` (SQLite).
        diagnostics: attach :class:`gradwise.train.GradientDiagnostics`
            sampling every N steps to each trial; null: off.
        trial_reports: also write each trial's own ``report.html`` (plots
            cost more than training a small model; the sweep report covers
            every trial either way).
    """

    method: Literal["grid", "random", "tpe"] = "tpe"
    n_trials: int | None = Field(None, ge=1)
    metric: str = "val_loss"
    direction: Literal["maximize", "minimize"] | None = None
    params: dict[str, ParamSpec]
    pruner: Literal["median", "none"] = "none"
    prune_warmup: int = Field(1, ge=0)
    prune_startup: int = Field(3, ge=0)
    seed: int = 0
    storage: str | None = None
    diagnostics: int | None = Field(None, ge=1)
    trial_reports: bool = False

    @field_validator("params")
    @classmethod
    def _some_params(cls, v: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        if not v:
            raise ValueError(
                "name at least one parameter to sweep, e.g. {optimizer.lr: {values: [...]}}"
            )
        return v

    @field_validator("metric")
    @classmethod
    def _split_metric(cls, v: str) -> str:
        if v.startswith("test_"):
            raise ValueError("the test split is never tuned on; use a val_* (or train_*) metric")
        if not v.startswith(("val_", "train_")) or v in ("val_", "train_"):
            raise ValueError("metric must be an epoch-record key such as val_accuracy or val_loss")
        return v

    @model_validator(mode="after")
    def _grid_and_direction(self) -> SweepSpec:
        if self.method == "grid":
            ranged = [k for k, p in self.params.items() if p.values is None]
            if ranged:
                raise ValueError(
                    f"a grid sweep lists 'values' for every parameter; {ranged[0]} has a range"
                )
            size = self.grid_size
            if self.n_trials is not None and self.n_trials > size:
                raise ValueError(
                    f"n_trials ({self.n_trials}) exceeds the {size} points of the grid"
                )
        elif self.n_trials is None:
            raise ValueError(f"a {self.method} sweep needs n_trials")
        if self.direction is None:
            from gradwise.train._monitor import direction

            try:
                mode = direction(self.metric, "auto", "sweep")
            except ConfigError:
                raise ValueError(
                    f"cannot tell whether {self.metric!r} should go up or down"
                    f"{_did_you_mean(self.metric)}; set direction: maximize or minimize"
                ) from None
            self.direction = "maximize" if mode == "max" else "minimize"
        return self

    @property
    def grid_size(self) -> int:
        return math.prod(len(p.values or ()) for p in self.params.values())

    @property
    def total_trials(self) -> int:
        return self.n_trials if self.n_trials is not None else self.grid_size


class SweepConfig(RunConfig):
    """A run config (the base of every trial) plus its ``sweep`` section."""

    name: str = "sweep"
    sweep: SweepSpec

    def base(self) -> dict[str, Any]:
        """The run config fields as written (unset fields stay unset), without ``sweep``."""
        return self.model_dump(mode="json", exclude_unset=True, exclude={"sweep"})


# -- parameter paths and values --------------------------------------------------------


def _section_fields(annotation: Any) -> dict[str, Any] | None:
    """The fields of the section a field holds: a model, or every member of a tagged union."""
    members = union_members(annotation)
    if members:
        fields: dict[str, Any] = {}
        for model in members.values():
            fields.update(model.model_fields)
        return fields
    for arg in getattr(annotation, "__args__", (annotation,)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return dict(arg.model_fields)
    return None


def _is_mapping(annotation: Any) -> bool:
    return (
        any(
            getattr(a, "__origin__", a) is dict
            for a in getattr(annotation, "__args__", (annotation,))
        )
        or getattr(annotation, "__origin__", None) is dict
    )


def check_path(path: str) -> None:
    """Raise :class:`ConfigError` unless ``path`` names a field of the run config."""
    parts = path.split(".")
    where = f"sweep.params.{path}"
    if not all(parts):
        raise ConfigError(f"{where}: a parameter is a dotted field path such as optimizer.lr")
    if parts[0] in FORBIDDEN:
        raise ConfigError(f"{where}: '{parts[0]}' is set by the sweep for each trial")
    fields: dict[str, Any] = dict(RunConfig.model_fields)
    for i, part in enumerate(parts):
        if part not in fields:
            owner = ".".join(parts[:i]) or "the run config"
            raise ConfigError(
                f"{where}: {owner} has no field {part!r}{closest(part, fields)}; "
                f"allowed: {', '.join(sorted(fields))}"
            )
        annotation = fields[part].annotation
        sub = _section_fields(annotation)
        if sub is None:
            if i < len(parts) - 1 and not _is_mapping(annotation):
                raise ConfigError(f"{where}: {'.'.join(parts[: i + 1])} is a value, not a section")
            return
        fields = sub


def set_path(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set ``raw[a][b][c] = value`` for ``path = "a.b.c"``, creating sections (replaces)."""
    parts = path.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def trial_raw(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The run config of one trial: the base with the swept values set."""
    raw = copy.deepcopy(base)
    for path, value in values.items():
        set_path(raw, path, value)
    return raw


def check_values(cfg: SweepConfig) -> None:
    """Build the run config each candidate value gives; name the first bad one."""
    base = cfg.base()
    for path, spec in cfg.sweep.params.items():
        check_path(path)
        for value in spec.candidates():
            try:
                parse_config(trial_raw(base, {path: value}))
            except ConfigError as exc:
                detail = str(exc).removeprefix("invalid config:").strip()
                raise ConfigError(
                    f"sweep.params.{path}: value {value!r} is not valid: {detail}"
                ) from None
    if cfg.sweep.metric.startswith("val_") and cfg.data.val == 0:
        raise ConfigError(
            f"sweep.metric {cfg.sweep.metric!r} needs a validation split; data.val is 0"
        )


def parse_sweep(raw: dict[str, Any]) -> SweepConfig:
    """Validate a sweep config dict, its parameter paths and values; raise ConfigError."""
    if isinstance(raw, dict) and "sweep" not in raw:
        raise ConfigError("a sweep config needs a 'sweep:' section (method, metric, params)")
    cfg = parse_config(raw, SweepConfig)
    check_values(cfg)
    return cfg
