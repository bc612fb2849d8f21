"""`LoRAConfig`: what to adapt, with which rank and scale.

A LoRA adapter replaces a frozen weight ``W`` by ``W + s·B·A`` with ``A`` of
shape ``(r, in)``, ``B`` of shape ``(out, r)`` and the scale
``s = alpha / r`` (or ``alpha / √r`` with rsLoRA). Only ``A`` and ``B`` train.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from gradwise.errors import ConfigError, closest, unknown

ALL_LINEAR = "all-linear"
BIASES = ("none", "all", "lora_only")
INITS = ("kaiming", "gaussian")
# The task types PEFT knows; the name decides which PeftModel subclass PEFT builds on load.
TASK_TYPES = (
    "SEQ_CLS",
    "SEQ_2_SEQ_LM",
    "CAUSAL_LM",
    "TOKEN_CLS",
    "QUESTION_ANS",
    "FEATURE_EXTRACTION",
)
# Names a PEFT user is likely to type, mapped to ours, for a precise hint.
_PEFT_NAMES = {
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "init_lora_weights": "init",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_regex(field_name: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{field_name}: {pattern!r} is not a valid regular expression ({exc})") from None


def _names(field_name: str, value: Any, *, allow_str: bool) -> str | tuple[str, ...] | None:
    """Normalise a 'module names or one regex' field to a str or a tuple of str."""
    if value is None:
        return None
    if isinstance(value, str):
        if not allow_str:
            raise ConfigError(f"{field_name} must be a list of module names, got the string {value!r}")
        if not value:
            raise ConfigError(f"{field_name} must not be an empty string")
        return value
    if not isinstance(value, (Sequence, set, frozenset)) or not all(
        isinstance(v, str) and v for v in value
    ):
        raise ConfigError(f"{field_name} must be a list of non-empty module names, got {value!r}")
    return tuple(sorted(value)) if isinstance(value, (set, frozenset)) else tuple(value)


def _pattern(field_name: str, value: Any, *, integer: bool) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{field_name} must be a mapping of module-name pattern to value, got {value!r}")
    out = {}
    for key, v in value.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{field_name}: keys must be non-empty strings, got {key!r}")
        _check_regex(f"{field_name}[{key!r}]", key)
        ok = (_is_int(v) if integer else _is_number(v)) and v > 0
        if not ok:
            kind = "a positive integer" if integer else "a positive number"
            raise ConfigError(f"{field_name}[{key!r}] must be {kind}, got {v!r}")
        out[key] = v
    return out


def match_pattern(patterns: Mapping[str, Any], name: str) -> str | None:
    """Return the first pattern key that matches module ``name`` at a dot boundary.

    A key matches when it matches a dotted suffix of the name (PEFT's rule), so
    ``"query"`` matches ``"encoder.layer.0.attention.self.query"`` and
    ``r"layer\\.0\\..*query"`` matches only the first layer's query.
    """
    for key in patterns:
        if re.match(rf"(.*\.)?({key})$", name):
            return key
    return None


@dataclass
class LoRAConfig:
    """Hyperparameters of a LoRA adapter (Hu et al., 2021, arXiv:2106.09685).

    The adapted layer computes ``y = W·x + s·B·(A·dropout(x))`` with
    ``A ∈ R^{r×in}``, ``B ∈ R^{out×r}`` and ``s = alpha / r``
    (``alpha / √r`` when ``use_rslora``, Kalajdzievski 2023, arXiv:2312.03732).
    ``B`` starts at zero, so a fresh adapter leaves the model's outputs unchanged.

    Args:
        r: rank of the update (positive int).
        alpha: scale numerator (``lora_alpha`` in PEFT).
        dropout: dropout probability on the adapter's input, in ``[0, 1)``.
        target_modules: which modules to adapt: a list of names (a module matches
            when its dotted path equals the name or ends with ``.name``), one
            regular expression matched against the full path, or ``"all-linear"``
            (every ``nn.Linear``/``Conv1D`` except a Hugging Face model's output
            embedding).
        use_rslora: rank-stabilised scale ``alpha / √r``.
        bias: ``"none"`` (all biases frozen), ``"all"`` (every bias trains) or
            ``"lora_only"`` (biases of adapted layers train).
        modules_to_save: modules that train fully and are saved with the adapter,
            e.g. a new classification head (PEFT's rule: the path ends with the name).
        init: ``"kaiming"`` (A kaiming-uniform, as ``nn.Linear``) or ``"gaussian"``
            (A ~ N(0, 1/r²)); B is zero either way. Embeddings follow PEFT:
            A is zero and B ~ N(0, 1).
        rank_pattern: per-module rank, ``{pattern: r}``; see `match_pattern`.
        alpha_pattern: per-module alpha, ``{pattern: alpha}``.
        exclude_modules: names or one regex of modules never to adapt.
        task_type: PEFT task type written to ``adapter_config.json`` (e.g.
            ``"CAUSAL_LM"``); decides the PeftModel class PEFT builds on load.

    Example:
        >>> cfg = LoRAConfig(r=8, alpha=16, target_modules=["query", "value"])
        >>> cfg.scaling("encoder.layer.0.attention.self.query")
        2.0
    """

    r: int = 8
    alpha: float = 16
    dropout: float = 0.0
    target_modules: str | Sequence[str] = ALL_LINEAR
    use_rslora: bool = False
    bias: str = "none"
    modules_to_save: Sequence[str] | None = None
    init: str = "kaiming"
    rank_pattern: dict[str, int] = field(default_factory=dict)
    alpha_pattern: dict[str, float] = field(default_factory=dict)
    exclude_modules: str | Sequence[str] | None = None
    task_type: str | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.r) or self.r <= 0:
            raise ConfigError(f"r must be a positive integer, got {self.r!r}")
        if not _is_number(self.alpha) or self.alpha <= 0:
            raise ConfigError(f"alpha must be a positive number, got {self.alpha!r}")
        if not _is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        self.target_modules = _names("target_modules", self.target_modules, allow_str=True)
        if self.target_modules is None or self.target_modules == ():
            raise ConfigError(
                "target_modules must name at least one module (a list of names, a regex, "
                f"or {ALL_LINEAR!r})"
            )
        if isinstance(self.target_modules, str) and self.target_modules.lower() != ALL_LINEAR:
            _check_regex("target_modules", self.target_modules)
        if not isinstance(self.use_rslora, bool):
            raise ConfigError(f"use_rslora must be true or false, got {self.use_rslora!r}")
        if self.bias not in BIASES:
            raise unknown("bias", str(self.bias), BIASES)
        self.modules_to_save = _names("modules_to_save", self.modules_to_save, allow_str=False)
        if self.init not in INITS:
            raise unknown("init", str(self.init), INITS)
        self.rank_pattern = _pattern("rank_pattern", self.rank_pattern, integer=True)
        self.alpha_pattern = _pattern("alpha_pattern", self.alpha_pattern, integer=False)
        self.exclude_modules = _names("exclude_modules", self.exclude_modules, allow_str=True)
        if isinstance(self.exclude_modules, str):
            _check_regex("exclude_modules", self.exclude_modules)
        if self.task_type is not None and self.task_type not in TASK_TYPES:
            raise unknown("task_type", str(self.task_type), TASK_TYPES)

    # -- per-module values -------------------------------------------------------------

    def rank(self, module_name: str) -> int:
        """Rank for the module at dotted path ``module_name`` (``rank_pattern`` first)."""
        key = match_pattern(self.rank_pattern, module_name)
        return self.r if key is None else self.rank_pattern[key]

    def lora_alpha(self, module_name: str) -> float:
        """Alpha for the module at dotted path ``module_name`` (``alpha_pattern`` first)."""
        key = match_pattern(self.alpha_pattern, module_name)
        return self.alpha if key is None else self.alpha_pattern[key]

    def scaling(self, module_name: str) -> float:
        """``alpha / r``, or ``alpha / √r`` with ``use_rslora``, for one module."""
        r = self.rank(module_name)
        return self.lora_alpha(module_name) / (math.sqrt(r) if self.use_rslora else r)

    # -- dict round trip ---------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LoRAConfig:
        """Build a config from a mapping (e.g. the ``lora:`` section of a YAML file).

        Unknown keys are rejected with the closest valid name.

        >>> LoRAConfig.from_dict({"r": 4, "target_modules": ["q_proj"]}).r
        4
        """
        if not isinstance(d, Mapping):
            raise ConfigError(f"a LoRA config must be a mapping of field to value, got {type(d).__name__}")
        allowed = [f.name for f in fields(cls)]
        for key in d:
            if key in _PEFT_NAMES:
                raise ConfigError(
                    f"unknown LoRA config field {key!r} (PEFT's name; gradwise calls it "
                    f"{_PEFT_NAMES[key]!r})"
                )
            if key not in allowed:
                raise unknown("LoRA config field", str(key), allowed)
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists for tuples) that `from_dict` reads back."""
        out = asdict(self)
        for key in ("target_modules", "modules_to_save", "exclude_modules"):
            if isinstance(out[key], tuple):
                out[key] = list(out[key])
        return out


def suggest_module(name: str, choices: Sequence[str]) -> str:
    """`closest` on the last dotted component, for 'no module named x' messages."""
    return closest(name.rsplit(".", 1)[-1], {c.rsplit(".", 1)[-1] for c in choices})
