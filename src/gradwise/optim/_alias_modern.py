"""The modern optimizers as aliases: lion, lamb, lars, schedule_free_adamw, schedule_free_sgd.

Each is one chain of gradwise transforms, takes the common weight-decay API
(``weight_decay``, ``decay_mask``, ``prox``) and equals its reference package
(lion-pytorch, pytorch-optimizer, schedulefree) on the reference's defaults.
Lookahead (``lookahead``) and SAM (``SAM``) wrap any chain or optimizer.
"""

from __future__ import annotations

from gradwise.optim import _validate as check
from gradwise.optim._assemble import Params, assemble
from gradwise.optim._base import chain
from gradwise.optim._decay import add_decayed_weights
from gradwise.optim._decay import prox as prox_transform
from gradwise.optim._modern import scale_by_lamb, scale_by_lars, scale_by_lion
from gradwise.optim._optimizer import Optimizer
from gradwise.optim._schedule_free import scale_by_second_moment, schedule_free
from gradwise.optim._schedule_free_optimizer import ScheduleFreeOptimizer
from gradwise.optim._transforms import scale_by_lr, scale_by_momentum
from gradwise.regularization import Mask, Penalty, check_mask


def lion(
    params: Params,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.99),
    weight_decay: float = 0.0,
    *,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
) -> Optimizer:
    """Lion (Chen et al. 2023): sign of an interpolated momentum, as lion-pytorch's ``Lion``.

    ``w <- w - lr * wd * w - lr * sign(b1 m + (1-b1) g)``, ``m <- b2 m + (1-b2) g``.
    The update has unit size per coordinate, so ``lr`` is typically 3-10x
    smaller than AdamW's and ``weight_decay`` as much larger.

    Example:
        >>> import torch
        >>> opt = lion(torch.nn.Linear(4, 1).parameters(), lr=1e-4, weight_decay=1.0)
    """
    core = [scale_by_lion(betas)]
    return assemble("lion", params, core, lr, weight_decay, True, decay_mask, prox, False, maximize)


def lamb(
    params: Params,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    eps: float = 1e-6,
    *,
    decay_mask: Mask = "all",
    prox: Penalty | None = None,
    maximize: bool = False,
) -> Optimizer:
    """LAMB (You et al. 2020): Adam's direction scaled per tensor by ``||w|| / ||r||``.

    See ``scale_by_lamb`` for the rule and where pytorch-optimizer's ``Lamb``
    (which this equals) departs from the paper. Weight decay is decoupled:
    ``w <- (1 - lr wd) w - lr * trust * r``; ``decay_mask="all"`` by default,
    as pytorch-optimizer decays every tensor.

    Example:
        >>> import torch
        >>> opt = lamb(torch.nn.Linear(4, 1).parameters(), lr=1e-3, weight_decay=0.01)
    """
    core = [scale_by_lamb(betas, eps)]
    return assemble("lamb", params, core, lr, weight_decay, True, decay_mask, prox, False, maximize)


def lars(
    params: Params,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    dampening: float = 0.0,
    trust_coefficient: float = 1e-3,
    nesterov: bool = False,
    *,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
) -> Optimizer:
    """LARS (You, Gitman & Ginsburg 2017): SGD with momentum on layer-wise trust-scaled gradients.

    ``g' = (g + wd w) * eta ||w|| / (||g|| + wd ||w||)`` on the tensors
    ``decay_mask`` selects (``"auto"``: not on biases and norms, which keep
    ``g`` as it is), then torch's SGD momentum and ``w <- w - lr * b``. Equals
    pytorch-optimizer's ``LARS`` (which skips every tensor with ``ndim <= 1``)
    with ``dampening=0``; with dampening, its buffer starts at zero and
    gradwise's, as torch's SGD, at the first gradient.

    Example:
        >>> import torch
        >>> opt = lars(torch.nn.Linear(4, 1).named_parameters(), lr=0.1, weight_decay=1e-4)
    """
    owner = "lars"
    mask = check_mask(decay_mask, f"{owner}: decay_mask")
    parts = [scale_by_lars(trust_coefficient, weight_decay, mask=mask),
             scale_by_momentum(momentum, dampening, check.flag(owner, "nesterov", nesterov)),
             scale_by_lr(check.lr(owner, lr))]
    if prox is not None:
        parts.append(prox_transform(prox))
    return Optimizer(params, chain(*parts), fused=False, maximize=check.flag(owner, "maximize", maximize))


def schedule_free_adamw(
    params: Params,
    lr: float = 0.0025,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
    *,
    decay_mask: Mask = "all",
    prox: Penalty | None = None,
    maximize: bool = False,
) -> ScheduleFreeOptimizer:
    """Schedule-Free AdamW (Defazio et al. 2024), as schedulefree's ``AdamWScheduleFree``.

    Adam's second-moment normalization (no first moment: the averaging plays
    its part) with decay at ``y``, then the Schedule-Free interpolation with
    ``b = betas[0]``. Call ``opt.eval()`` before evaluating or saving and
    ``opt.train()`` before training steps. Unlike the package, it starts in
    train mode (the two coincide before the first step).

    Example:
        >>> import torch
        >>> opt = schedule_free_adamw(torch.nn.Linear(4, 1).parameters(), lr=2.5e-3)
        >>> opt.eval(); opt.train()
    """
    owner = "schedule_free_adamw"
    b = check.betas(owner, betas)
    parts = [scale_by_second_moment(b, eps),
             add_decayed_weights(check.number(owner, "weight_decay", weight_decay),
                                 mask=check_mask(decay_mask, f"{owner}: decay_mask")),
             schedule_free(lr, b[0], warmup_steps, r, weight_lr_power)]
    if prox is not None:
        parts.append(prox_transform(prox))
    return ScheduleFreeOptimizer(params, chain(*parts), maximize=check.flag(owner, "maximize", maximize))


def schedule_free_sgd(
    params: Params,
    lr: float = 1.0,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
    *,
    decay_mask: Mask = "all",
    prox: Penalty | None = None,
    maximize: bool = False,
) -> ScheduleFreeOptimizer:
    """Schedule-Free SGD (Defazio et al. 2024), as schedulefree's ``SGDScheduleFree``.

    ``y <- (1-c) y + c z + lr (b (1-c) - 1) g'``, ``z <- z - lr g'`` with
    ``g' = g + wd y``; ``opt.eval()`` / ``opt.train()`` swap the averaged
    weights in and out.

    Example:
        >>> import torch
        >>> opt = schedule_free_sgd(torch.nn.Linear(4, 1).parameters(), lr=0.5)
    """
    owner = "schedule_free_sgd"
    parts = [add_decayed_weights(check.number(owner, "weight_decay", weight_decay),
                                 mask=check_mask(decay_mask, f"{owner}: decay_mask")),
             schedule_free(lr, momentum, warmup_steps, r, weight_lr_power)]
    if prox is not None:
        parts.append(prox_transform(prox))
    return ScheduleFreeOptimizer(params, chain(*parts), maximize=check.flag(owner, "maximize", maximize))


ALIASES = {"lion": lion, "lamb": lamb, "lars": lars, "schedule_free_adamw": schedule_free_adamw,
           "schedule_free_sgd": schedule_free_sgd}
