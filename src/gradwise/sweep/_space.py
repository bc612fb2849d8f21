"""The search space: Optuna suggestions for each parameter, and value encoding.

Optuna stores categorical choices as ``None``, ``bool``, ``int``, ``float`` or
``str``. A parameter whose values include lists or mappings (``model.hidden:
{values: [[64], [64, 64]]}``) is stored as their JSON text and decoded back
before it reaches the run config.
"""

from __future__ import annotations

import json
from typing import Any

from gradwise.sweep._config import ParamSpec, SweepSpec

_PLAIN = (type(None), bool, int, float, str)


class Space:
    """The parameters of a sweep, as Optuna distributions.

    Example:
        >>> from gradwise.sweep._config import SweepSpec
        >>> spec = SweepSpec(method="grid", metric="val_loss",
        ...                  params={"model.hidden": {"values": [[8], [8, 8]]}})
        >>> Space(spec).grid()
        {'model.hidden': ['[8]', '[8, 8]']}
    """

    def __init__(self, spec: SweepSpec) -> None:
        self.params: dict[str, ParamSpec] = dict(spec.params)
        self.encoded = {
            name: p.values is not None and not all(isinstance(v, _PLAIN) for v in p.values)
            for name, p in self.params.items()
        }

    def choices(self, name: str) -> list[Any]:
        values = self.params[name].values or []
        return [json.dumps(v) for v in values] if self.encoded[name] else list(values)

    def grid(self) -> dict[str, list[Any]]:
        """The search space of Optuna's ``GridSampler``."""
        return {name: self.choices(name) for name in self.params}

    def decode(self, name: str, stored: Any) -> Any:
        return json.loads(stored) if self.encoded[name] else stored

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask ``trial`` for every parameter; returns path -> value for the run config."""
        out = {}
        for name, p in self.params.items():
            if p.values is not None:
                stored = trial.suggest_categorical(name, self.choices(name))
            elif p.type == "int":
                step = int(p.step) if p.step is not None else 1
                stored = trial.suggest_int(name, int(p.low), int(p.high), step=step, log=p.log)
            else:
                stored = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
            out[name] = self.decode(name, stored)
        return out

    def values_of(self, params: dict[str, Any]) -> dict[str, Any]:
        """Decode a finished trial's stored ``params``."""
        return {k: self.decode(k, v) for k, v in params.items() if k in self.params}
