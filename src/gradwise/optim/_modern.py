"""Transforms of the modern optimizers: Lion, LARS and LAMB trust ratios, Lookahead, Schedule-Free.

Each equals its reference implementation (lion-pytorch, pytorch-optimizer,
schedulefree; checked in tests/optim/test_modern.py). Where a reference
departs from its paper, the docstring says so; gradwise follows the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from gradwise.errors import ConfigError
from gradwise.optim import _validate as check
from gradwise.optim._base import EmptyState, Group, Transform
from gradwise.optim._transforms import _step_counter
from gradwise.regularization import Mask, check_mask


class LionState(NamedTuple):
    """Lion's momentum under lion-pytorch's key."""

    exp_avg: Tensor


@dataclass(frozen=True, repr=False)
class ScaleByLion(Transform):
    """Lion's sign direction; see ``scale_by_lion``."""

    betas: tuple[float, float] = (0.9, 0.99)
    mask: Mask = None
    State = LionState
    hyper = ("betas",)

    def init(self, param: Tensor) -> LionState:
        return LionState(torch.zeros_like(param, memory_format=torch.preserve_format))

    def update(self, u: Tensor, state: LionState, param: Tensor, group: Group) -> tuple[Tensor, LionState]:
        b1, b2 = self.option(group, "betas")
        m = state.exp_avg
        out = m.mul(b1).add_(u, alpha=1.0 - b1).sign_()
        m.mul_(b2).add_(u, alpha=1.0 - b2)
        return out, state


def scale_by_lion(betas: tuple[float, float] = (0.9, 0.99), *, mask: Mask = None) -> ScaleByLion:
    """Lion's direction (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

    ``u <- sign(b1 m + (1 - b1) u)``, then ``m <- b2 m + (1 - b2) u`` (the
    momentum is updated after, with the other beta). Group option ``betas``.

    Example:
        >>> t = scale_by_lion(betas=(0.95, 0.98))
    """
    return ScaleByLion(check.betas("scale_by_lion", betas), check_mask(mask))


@dataclass(frozen=True, repr=False)
class ScaleByLars(Transform):
    """LARS's layer-wise trust ratio with its weight decay; see ``scale_by_lars``."""

    trust_coefficient: float = 1e-3
    weight_decay: float = 0.0
    mask: Mask = "auto"
    hyper = ("trust_coefficient", "weight_decay")

    def update(self, u: Tensor, state: EmptyState, param: Tensor, group: Group) -> tuple[Tensor, EmptyState]:
        wd = self.option(group, "weight_decay")
        w_norm = torch.linalg.norm(param)
        denom = torch.linalg.norm(u) + wd * w_norm
        one = torch.ones_like(w_norm)
        ratio = torch.where(w_norm > 0.0,
                            torch.where(denom > 0.0, self.option(group, "trust_coefficient") * w_norm / denom, one),
                            one)
        return u.add(param, alpha=wd).mul_(ratio), state


def scale_by_lars(trust_coefficient: float = 1e-3, weight_decay: float = 0.0, *,
                  mask: Mask = "auto") -> ScaleByLars:
    """LARS's layer-wise scaling (You, Gitman & Ginsburg 2017), as pytorch-optimizer's ``LARS``.

    ``u <- (u + wd w) * eta ||w|| / (||u|| + wd ||w||)`` (1 where ``||w||`` or the
    denominator is 0), per tensor; momentum and ``scale_by_lr`` follow. The
    paper's local lr is this trust ratio; weight decay is part of it, so it
    lives here, not in a separate decay transform. ``mask="auto"`` skips biases
    and norm weights, as pytorch-optimizer skips every tensor with ``ndim <= 1``
    (no trust ratio, no decay). Group options: ``trust_coefficient``, ``weight_decay``.

    Example:
        >>> t = scale_by_lars(1e-3, weight_decay=5e-4)
    """
    owner = "scale_by_lars"
    return ScaleByLars(check.number(owner, "trust_coefficient", trust_coefficient),
                       check.number(owner, "weight_decay", weight_decay), check_mask(mask, f"{owner}: mask"))


class LambState(NamedTuple):
    """LAMB's moments under pytorch-optimizer's keys, and a step counter."""

    step: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor


@dataclass(frozen=True, repr=False)
class ScaleByLamb(Transform):
    """LAMB's trust-scaled Adam direction; see ``scale_by_lamb``."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6
    clamp: float = 10.0
    mask: Mask = None
    State = LambState
    hyper = ("betas", "eps")

    def init(self, param: Tensor) -> LambState:
        z = torch.zeros_like(param, memory_format=torch.preserve_format)
        return LambState(_step_counter(param), z, torch.zeros_like(z))

    def update(self, u: Tensor, state: LambState, param: Tensor, group: Group) -> tuple[Tensor, LambState]:
        b1, b2 = self.option(group, "betas")
        eps = self.option(group, "eps")
        step, m, v = state
        step += 1
        m.mul_(b1).add_(u, alpha=1.0 - b1)
        v.mul_(b2).addcmul_(u, u, value=1.0 - b2)
        out = v.sqrt().add_(eps)
        torch.div(m, out, out=out)
        # pytorch-optimizer takes ||w|| after this step's decoupled decay
        # w <- (1 - lr wd) w; its norm is that factor times ||w||.
        shrink = 1.0 - check.as_float(group.get("lr", 0.0)) * group.get("weight_decay", 0.0)
        w_norm = (torch.linalg.norm(param) * abs(shrink)).clamp_(min=0, max=self.clamp)
        u_norm = torch.linalg.norm(out)
        ratio = 1.0 if w_norm == 0 or u_norm == 0 else w_norm / (u_norm + eps)
        # The first moment's bias correction goes into the step size only.
        return out.mul_(ratio / (1 - b1 ** step.item())), state


def scale_by_lamb(betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6, clamp: float = 10.0, *,
                  mask: Mask = None) -> ScaleByLamb:
    """LAMB's direction (You et al. 2020), as pytorch-optimizer's ``Lamb`` (its defaults).

    ``m <- b1 m + (1-b1) u``, ``v <- b2 v + (1-b2) u^2``, ``r = m / (sqrt(v) + eps)``,
    ``u <- min(||w'||, clamp) / (||r|| + eps) * r / (1 - b1^t)`` with
    ``w' = (1 - lr wd) w``, the weights after this step's decoupled decay.
    Where pytorch-optimizer departs from the paper (and gradwise follows it):
    ``r`` uses the uncorrected ``m`` and ``v`` (the paper's Algorithm 2 divides
    each by its bias correction before the trust ratio); ``m``'s correction is
    applied to the step size after it, ``v``'s never; and the decay is applied
    to ``w`` directly, outside the trust ratio (the paper puts ``wd w`` into
    ``r``). Group options: ``betas``, ``eps`` (and it reads ``lr`` and
    ``weight_decay``).

    Example:
        >>> t = scale_by_lamb(betas=(0.9, 0.999))
    """
    owner = "scale_by_lamb"
    return ScaleByLamb(check.betas(owner, betas), check.number(owner, "eps", eps),
                       check.number(owner, "clamp", clamp), check_mask(mask))


class LookaheadState(NamedTuple):
    """Lookahead's slow weights and its step counter."""

    slow_params: Tensor
    lookahead_step: Tensor


@dataclass(frozen=True, repr=False)
class Lookahead(Transform):
    """Lookahead's slow weights around the chain before it; see ``lookahead``."""

    k: int = 5
    alpha: float = 0.5
    mask: Mask = None
    State = LookaheadState
    moves_param = True

    def init(self, param: Tensor) -> LookaheadState:
        return LookaheadState(param.detach().clone(), _step_counter(param).cpu())

    def update(self, u: Tensor, state: LookaheadState, param: Tensor, group: Group) -> tuple[None, LookaheadState]:
        slow, step = state
        step += 1
        param.add_(u)
        if int(step.item()) % self.k == 0:
            param.lerp_(slow, 1.0 - self.alpha)  # alpha fast + (1 - alpha) slow
            slow.copy_(param)
        return None, state


def lookahead(k: int = 5, alpha: float = 0.5, *, mask: Mask = None) -> Lookahead:
    """Lookahead (Zhang et al. 2019) around the chain before it, as pytorch-optimizer's.

    Put it after ``scale_by_lr``: the chain's steps move the fast weights;
    every ``k`` steps the slow weights move ``slow <- slow + alpha (fast - slow)``
    and the fast weights are reset to them. Its state (``slow_params``) is in
    the optimizer's state, so it resumes with ``state_dict``.

    Example:
        >>> from gradwise.optim import chain, scale_by_adam, scale_by_lr
        >>> t = chain(scale_by_adam(), scale_by_lr(1e-3), lookahead(k=5, alpha=0.5))
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"lookahead: k must be an integer >= 1; got {k!r}")
    return Lookahead(k, check.number("lookahead", "alpha", alpha, 0.0, 1.0), check_mask(mask))
