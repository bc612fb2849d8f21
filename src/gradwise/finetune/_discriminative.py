"""Discriminative learning rates: one optimizer param group per layer group."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from gradwise.errors import ConfigError
from gradwise.finetune._groups import LayerGroup, layer_groups


def _positive(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"discriminative_lr: {field} must be a positive number, got {value!r}")
    if value <= 0:
        raise ConfigError(f"discriminative_lr: {field} must be > 0, got {value!r}")
    return float(value)


def group_lrs(
    n: int,
    lr: float | Sequence[float],
    factor: float = 2.6,
    decay: float | None = None,
    head_lr: float | None = None,
) -> list[float]:
    """The learning rate of each of ``n`` groups, input to output (see :func:`discriminative_lr`).

    >>> [round(x, 6) for x in group_lrs(3, 0.01, factor=2.0)]
    [0.0025, 0.005, 0.01]
    >>> [round(x, 6) for x in group_lrs(3, 0.01, factor=2.0, head_lr=0.1)]
    [0.005, 0.01, 0.1]
    """
    if head_lr is not None:
        if n < 2:
            raise ConfigError("discriminative_lr: head_lr needs at least two layer groups")
        if isinstance(lr, Sequence) and not isinstance(lr, str):
            raise ConfigError("discriminative_lr: give head_lr or a list of rates, not both")
        return [*group_lrs(n - 1, lr, factor, decay), _positive("head_lr", head_lr)]
    if isinstance(lr, Sequence) and not isinstance(lr, str):
        lrs = [_positive(f"lr[{i}]", v) for i, v in enumerate(lr)]
        if len(lrs) != n:
            raise ConfigError(
                f"discriminative_lr: lr lists {len(lrs)} rates but the model has {n} layer groups"
            )
        return lrs
    top = _positive("lr", lr)
    if decay is not None:
        decay = _positive("decay", decay)
        if decay > 1:
            raise ConfigError(f"discriminative_lr: decay must be in (0, 1], got {decay!r}")
        return [top * decay ** (n - 1 - i) for i in range(n)]
    factor = _positive("factor", factor)
    return [top / factor ** (n - 1 - i) for i in range(n)]


def discriminative_lr(
    model: nn.Module | Sequence[LayerGroup],
    lr: float | Sequence[float],
    factor: float = 2.6,
    *,
    decay: float | None = None,
    head_lr: float | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Param groups whose learning rate shrinks from the head down to the input.

    With ``G`` layer groups ordered input to output (``g = G-1`` is the head),
    group ``g`` gets

        lr_g = lr / factor^(G-1-g)          (ULMFiT, Howard & Ruder 2018; factor 2.6)
        lr_g = lr · decay^(G-1-g)           (layer-wise lr decay, e.g. decay=0.8)

    so the head trains at ``lr`` and lower, more general layers change less.
    ``lr`` may also be a list of one rate per group. With ``head_lr`` the head
    gets its own rate and ``lr`` is that of the top body group (the usual
    recipe for transformers: a fresh head learns fast, pretrained layers at
    ~1e-4 with layer-wise decay). Every parameter is
    included, frozen ones too, so that gradual unfreezing needs no new groups;
    a frozen parameter gets no gradient and the optimizer skips it.

    The result goes to any optimizer: ``gradwise.optim.adamw(groups, ...)``,
    ``torch.optim.SGD(groups, ...)``; a schedule attached afterwards
    (``gradwise.schedules.attach``) scales each group from its own base rate,
    so the ratios hold at every step.

    Args:
        model: a module (grouped by :func:`layer_groups`) or a list of
            :class:`LayerGroup`.
        lr: learning rate of the top group, or one per group (input to output).
        factor: ratio between neighbouring groups (> 0; 1 gives one rate).
        decay: layer-wise decay ``in (0, 1]`` instead of ``factor`` (``factor = 1/decay``).
        head_lr: rate of the top group (the head); ``lr`` then applies to the group below it.
        **options: other group options (``weight_decay=0.01``, ...).

    Returns:
        one dict per group: ``params``, ``param_names``, ``lr``, ``name`` and ``options``.

    Example:
        >>> import torch
        >>> from gradwise.nn import MLP
        >>> groups = discriminative_lr(MLP(4, [8, 8], 2), lr=1e-2, factor=2.0)
        >>> [(g["name"], g["lr"]) for g in groups]
        [('block0', 0.0025), ('block1', 0.005), ('head', 0.01)]
        >>> opt = torch.optim.AdamW(groups)
    """
    groups = layer_groups(model) if isinstance(model, nn.Module) else list(model)
    if not groups or not all(isinstance(g, LayerGroup) for g in groups):
        raise TypeError("discriminative_lr: model must be an nn.Module or a list of LayerGroup")
    for key in ("params", "param_names", "lr", "name"):
        if key in options:
            raise ConfigError(f"discriminative_lr: option {key!r} is set per group; remove it")
    lrs = group_lrs(len(groups), lr, factor, decay, head_lr)
    return [
        {
            "params": [p for _, p in g.params],
            "param_names": g.names,
            "lr": rate,
            "name": g.name,
            **options,
        }
        for g, rate in zip(groups, lrs)
    ]
