"""The shared assembly of an alias: weight decay, the step size and the optional prox around a core."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gradwise.errors import ConfigError
from gradwise.optim import _validate as check
from gradwise.optim._base import Transform, chain
from gradwise.optim._decay import add_decayed_weights, add_l2
from gradwise.optim._decay import prox as prox_transform
from gradwise.optim._optimizer import Optimizer
from gradwise.optim._transforms import scale_by_lr
from gradwise.regularization import Mask, Penalty, check_mask

Params = Iterable[Any]


def assemble(
    owner: str,
    params: Params,
    core: list[Transform],
    lr: float,
    weight_decay: float,
    decoupled: bool,
    decay_mask: Mask,
    prox: Penalty | None,
    fused: bool | None,
    maximize: bool = False,
    signed: bool = False,
    foreach: bool | None = None,
    **options: Any,
) -> Optimizer:
    """``[add_l2] core [add_decayed_weights] scale_by_lr [prox]`` run by ``Optimizer``.

    ``signed=True`` is for a core that returns the step itself (Rprop, ASGD):
    no ``scale_by_lr``, and decay can only be coupled (on the gradient).
    ``options`` become param-group options as well (torch's flags that a
    torch optimizer loading our state_dict reads, such as NAdam's
    ``decoupled_weight_decay``).
    """
    lr = check.lr(owner, lr)
    maximize = check.flag(owner, "maximize", maximize)
    wd = check.number(owner, "weight_decay", weight_decay)
    decoupled = check.flag(owner, "decoupled", decoupled)
    mask = check_mask(decay_mask, f"{owner}: decay_mask")
    if prox is not None and not isinstance(prox, Penalty):
        raise ConfigError(
            f"{owner}: prox must be a penalty such as gradwise.regularization.L1(lam) or None; "
            f"got {prox!r}"
        )
    # The decay transform stays in the chain when weight_decay is 0, so that a
    # param group may still set its own weight_decay.
    if signed:
        if decoupled:
            raise ConfigError(f"{owner}: the step is made by the algorithm itself; "
                              "weight decay can only be coupled (decoupled=False)")
        parts = [add_l2(wd, mask=mask), *core]
    elif decoupled:
        parts = [*core, add_decayed_weights(wd, mask=mask), scale_by_lr(lr)]
    else:
        parts = [add_l2(wd, mask=mask), *core, scale_by_lr(lr)]
    if prox is not None:
        parts.append(prox_transform(prox))
    return Optimizer(params, chain(*parts), fused=fused, foreach=foreach, maximize=maximize, **options)
