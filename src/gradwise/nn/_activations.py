"""Activation registry: build a ``torch.nn`` activation module from a name.

A config file says ``activation: leaky_relu`` with ``alpha: 0.1``; this module
turns that into ``torch.nn.LeakyReLU(negative_slope=0.1)`` and rejects names or
options it does not know, naming what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from gradwise.errors import ConfigError, unknown


@dataclass(frozen=True)
class _Spec:
    build: Callable[..., nn.Module]
    defaults: dict[str, Any]


def _number(name: str, key: str, value: Any) -> float:
    # bool is an int subclass; `alpha=True` is a typo, not a slope of 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"activation {name!r}: {key} must be a number, got {value!r}")
    return float(value)


def _leaky_relu(alpha: float) -> nn.Module:
    return nn.LeakyReLU(negative_slope=_number("leaky_relu", "alpha", alpha))


def _elu(alpha: float) -> nn.Module:
    alpha = _number("elu", "alpha", alpha)
    if alpha <= 0:
        raise ConfigError(f"activation 'elu': alpha must be > 0, got {alpha!r}")
    return nn.ELU(alpha=alpha)


def _gelu(approximate: str) -> nn.Module:
    if approximate not in ("none", "tanh"):
        raise ConfigError(
            f"activation 'gelu': approximate must be 'none' or 'tanh', got {approximate!r}"
        )
    return nn.GELU(approximate=approximate)


def _softmax(dim: int) -> nn.Module:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise ConfigError(f"activation 'softmax': dim must be an int, got {dim!r}")
    return nn.Softmax(dim=dim)


_REGISTRY: dict[str, _Spec] = {
    "sigmoid": _Spec(nn.Sigmoid, {}),
    "tanh": _Spec(nn.Tanh, {}),
    "relu": _Spec(nn.ReLU, {}),
    "leaky_relu": _Spec(_leaky_relu, {"alpha": 0.01}),
    "elu": _Spec(_elu, {"alpha": 1.0}),
    "gelu": _Spec(_gelu, {"approximate": "none"}),
    "silu": _Spec(nn.SiLU, {}),
    "softmax": _Spec(_softmax, {"dim": -1}),
}

ACTIVATIONS: tuple[str, ...] = tuple(_REGISTRY)
"""Names accepted by :func:`activation`, in registry order."""


def activation(name: str, **kw: Any) -> nn.Module:
    """Build the activation module called ``name``.

    ======================  ==============================================  ============
    name                    formula                                         options
    ======================  ==============================================  ============
    ``sigmoid``             σ(x) = 1 / (1 + e^(−x))
    ``tanh``                tanh(x)
    ``relu``                max(0, x)
    ``leaky_relu``          x if x > 0 else alpha·x                         alpha=0.01
    ``elu``                 x if x > 0 else alpha·(e^x − 1)                 alpha=1.0
    ``gelu``                x·Φ(x), Φ the standard normal CDF               approximate="none"
    ``silu``                x·σ(x)
    ``softmax``             e^(x_i) / Σ_j e^(x_j) along ``dim``             dim=-1
    ======================  ==============================================  ============

    Args:
        name: one of :data:`ACTIVATIONS`.
        **kw: the options in the table; anything else is a :class:`ConfigError`.

    Returns:
        A fresh ``torch.nn`` module; it maps a tensor of any shape to the same shape.

    Example:
        >>> import torch
        >>> activation("leaky_relu", alpha=0.1)(torch.tensor([-2.0, 3.0]))
        tensor([-0.2000,  3.0000])
    """
    spec = _REGISTRY.get(name) if isinstance(name, str) else None
    if spec is None:
        raise unknown("activation", str(name), ACTIVATIONS)
    extra = sorted(set(kw) - set(spec.defaults))
    if extra:
        allowed = ", ".join(spec.defaults) if spec.defaults else "none"
        raise ConfigError(
            f"activation {name!r} got unknown option(s) {', '.join(map(repr, extra))}; "
            f"allowed options: {allowed}"
        )
    return spec.build(**{**spec.defaults, **kw})
