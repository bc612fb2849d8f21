"""One config model per optimizer alias of :mod:`gradwise.optim`, picked by ``name``.

The fields are the alias's own arguments and defaults (read from its
signature), so ``adagrad``'s ``lr_decay`` is settable and ``adam`` has no
``momentum``. Values are checked by the alias itself, once, when the config
is loaded::

    >>> from gradwise.config import optimizer_config
    >>> cfg = optimizer_config(name="adagrad", lr=0.1, lr_decay=1e-3)
    >>> type(cfg).__name__, cfg.options()
    ('AdagradOptimizerConfig', {'lr': 0.1, 'lr_decay': 0.001})
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import torch
from pydantic import TypeAdapter, model_validator

from gradwise.config._base import Betas, Lr, ProxConfig
from gradwise.config._tagged import TaggedConfig, model_from_signature, tagged_union
from gradwise.errors import ConfigError
from gradwise.optim import ALIASES, build

# Arguments whose Python type is wider than YAML can express.
_YAML_TYPES: dict[str, Any] = {
    "lr": Lr,
    "betas": Betas,
    "prox": ProxConfig | None,
    "decay_mask": str | list[str],
}


class OptimizerConfigBase(TaggedConfig):
    """Base of the generated optimizer models; ``lr: auto`` lets lr_find choose."""

    def options(self) -> dict[str, Any]:
        """The set options; ``prox`` as the ``{kind, lam, alpha}`` mapping ``optim.build`` takes."""
        out = super().options()
        if out.get("prox") is not None:
            out["prox"] = self.prox.model_dump()  # type: ignore[attr-defined]
        return out

    @model_validator(mode="after")
    def _alias_accepts(self) -> OptimizerConfigBase:
        # the alias is the one check of its values: build it once on a dummy parameter
        options = self.options()
        if options.get("lr") == "auto":
            options["lr"] = 1e-3
        try:
            # 2-D: matrix-only aliases (muon) accept it, and every other alias too
            build([torch.zeros(2, 2, requires_grad=True)], self.name, **options)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


def _fields(alias: Any) -> dict[str, tuple[Any, Any]]:
    hints = typing.get_type_hints(alias)
    fields: dict[str, tuple[Any, Any]] = {}
    params = list(inspect.signature(alias).parameters.values())[1:]  # after ``params``
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = _YAML_TYPES.get(p.name, hints.get(p.name, Any))
        fields[p.name] = (ann, ... if p.default is p.empty else p.default)
    return fields


OPTIMIZER_MODELS: dict[str, type[TaggedConfig]] = {
    name: model_from_signature(OptimizerConfigBase, name, _fields(alias))
    for name, alias in ALIASES.items()
}
OPTIMIZERS = tuple(OPTIMIZER_MODELS)

# ``optimizer:`` of a run config: ``{name: adamw, lr: 3e-4, ...}`` (``name`` defaults to adam).
OptimizerConfig = tagged_union("optimizer", OPTIMIZER_MODELS, default="adam")
_ADAPTER: TypeAdapter[Any] = TypeAdapter(OptimizerConfig)


def optimizer_config(**values: Any) -> Any:
    """Validate ``values`` into the optimizer model its ``name`` picks."""
    return _ADAPTER.validate_python(values)
