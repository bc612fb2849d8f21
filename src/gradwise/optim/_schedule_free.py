"""Schedule-Free SGD and AdamW (Defazio et al. 2024), as the ``schedulefree`` package computes them.

The optimizer keeps two sequences: ``z`` (plain SGD/Adam steps) and the
average ``x`` of the ``z``'s; gradients are taken at ``y = (1 - b) z + b x``,
which is what the parameters hold during training. For evaluation the
parameters must hold ``x``: ``opt.eval()`` swaps them in, ``opt.train()`` back
(``x = (y - (1 - b) z) / b``, done as one ``lerp`` each way, as the package
does). No learning-rate schedule is needed: the averaging weights
``c_{k+1} = w_k / sum w`` with ``w_k = (k+1)^r lr_max^weight_lr_power`` do its job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from gradwise.errors import ConfigError
from gradwise.optim import _validate as check
from gradwise.optim._base import Group, Transform
from gradwise.optim._transforms import _step_counter
from gradwise.regularization import Mask, check_mask


class SecondMomentState(NamedTuple):
    """The second moment under schedulefree's key."""

    step: Tensor
    exp_avg_sq: Tensor


@dataclass(frozen=True, repr=False)
class ScaleBySecondMoment(Transform):
    """Adam's normalization without a first moment; see ``scale_by_second_moment``."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    mask: Mask = None
    State = SecondMomentState
    hyper = ("betas", "eps")

    def init(self, param: Tensor) -> SecondMomentState:
        return SecondMomentState(_step_counter(param), torch.zeros_like(param, memory_format=torch.preserve_format))

    def update(self, u: Tensor, state: SecondMomentState, param: Tensor, group: Group) -> tuple[Tensor, SecondMomentState]:
        b2 = self.option(group, "betas")[1]
        step, v = state
        step += 1
        v.mul_(b2).addcmul_(u, u, value=1 - b2)
        denom = v.div(1 - b2 ** step.item()).sqrt_().add_(self.option(group, "eps"))
        return torch.div(u, denom, out=denom), state


def scale_by_second_moment(betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, *,
                           mask: Mask = None) -> ScaleBySecondMoment:
    """``v <- b2 v + (1-b2) u^2``, ``u <- u / (sqrt(v / (1 - b2^t)) + eps)`` (Schedule-Free AdamW's).

    Example:
        >>> t = scale_by_second_moment()
    """
    owner = "scale_by_second_moment"
    return ScaleBySecondMoment(check.betas(owner, betas), check.number(owner, "eps", eps), check_mask(mask))


class ScheduleFreeState(NamedTuple):
    """``z`` (schedulefree's key) and the averaging bookkeeping, per parameter.

    The bookkeeping is plain Python numbers (as schedulefree keeps it in the
    param group): no tensor op per parameter and step for it.
    """

    z: Tensor
    sf_step: int
    weight_sum: float
    lr_max: float


@dataclass(frozen=True, repr=False)
class ScheduleFreeStep(Transform):
    """The Schedule-Free interpolation; see ``schedule_free``."""

    lr: float = 1.0
    momentum: float = 0.9
    warmup_steps: int = 0
    r: float = 0.0
    weight_lr_power: float = 2.0
    mask: Mask = None
    State = ScheduleFreeState
    hyper = ("lr", "momentum", "warmup_steps", "r", "weight_lr_power")
    moves_param = True

    def init(self, param: Tensor) -> ScheduleFreeState:
        return ScheduleFreeState(param.detach().clone(memory_format=torch.preserve_format), 0, 0.0, -1.0)

    def update(self, u: Tensor, state: ScheduleFreeState, param: Tensor, group: Group) -> tuple[None, ScheduleFreeState]:
        z, k, wsum, lr_max = state
        opt = self.option
        warm = opt(group, "warmup_steps")
        lr = opt(group, "lr")
        lr = (lr.item() if isinstance(lr, Tensor) else float(lr)) * ((k + 1) / warm if k < warm else 1.0)
        lr_max = max(lr, lr_max)
        weight = ((k + 1) ** opt(group, "r")) * (lr_max ** opt(group, "weight_lr_power"))
        wsum = wsum + weight
        ckp1 = weight / wsum if wsum else 0.0
        beta = opt(group, "momentum")
        param.lerp_(z, ckp1).add_(u, alpha=lr * (beta * (1 - ckp1) - 1))
        z.sub_(u, alpha=lr)
        return None, ScheduleFreeState(z, k + 1, wsum, lr_max)


def schedule_free(lr: float = 1.0, momentum: float = 0.9, warmup_steps: int = 0, r: float = 0.0,
                  weight_lr_power: float = 2.0, *, mask: Mask = None) -> ScheduleFreeStep:
    """Schedule-Free's step on the preconditioned gradient ``u`` (Defazio et al. 2024).

    With ``lr_k = lr * min(1, (k+1)/warmup_steps)``, ``c = w_k / sum_i w_i``:
    ``y <- (1 - c) y + c z + lr_k (b (1 - c) - 1) u`` and ``z <- z - lr_k u``,
    ``b = momentum``. It moves the parameter itself, so it ends a chain
    (before any ``prox``). Group options: all arguments.

    Example:
        >>> from gradwise.optim import chain, add_decayed_weights
        >>> sf_sgd = chain(add_decayed_weights(0.0, mask="all"), schedule_free(1.0, momentum=0.9))
    """
    owner = "schedule_free"
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ConfigError(f"{owner}: warmup_steps must be an integer >= 0; got {warmup_steps!r}")
    momentum = check.number(owner, "momentum", momentum, 0.0, 1.0, high_open=True)
    if momentum <= 0:
        raise ConfigError(f"{owner}: momentum must be in (0, 1); got {momentum!r}")
    return ScheduleFreeStep(check.lr(owner, lr), momentum, warmup_steps, check.number(owner, "r", r),
                            check.number(owner, "weight_lr_power", weight_lr_power), check_mask(mask))
