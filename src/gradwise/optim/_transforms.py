"""Scaling transforms: momentum, Adam, RMS, Adagrad, learning rate, clipping.

Each computes exactly what the torch.optim class of the same algorithm does
per tensor, in the same order of operations, so that chains of them follow
torch.optim's trajectories to float32 round-off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from gradwise.errors import ConfigError
from gradwise.optim import _validate as check
from gradwise.optim._base import EmptyState, Group, Transform
from gradwise.regularization import Mask, check_mask


def _step_counter(param: Tensor) -> Tensor:
    # A float32 tensor on the parameter's device, like torch's fused Adam:
    # the fused kernels read it there, and state_dicts stay interchangeable.
    return torch.zeros((), dtype=torch.float32, device=param.device)


class MomentumState(NamedTuple):
    """``momentum_buffer``: the velocity, ``None`` before the first step (torch's key)."""

    momentum_buffer: Tensor | None


@dataclass(frozen=True, repr=False)
class ScaleByMomentum(Transform):
    """Heavy-ball or Nesterov momentum; see ``scale_by_momentum``."""

    momentum: float = 0.9
    dampening: float = 0.0
    nesterov: bool = False
    mask: Mask = None
    State = MomentumState
    hyper = ("momentum", "dampening", "nesterov")

    def init(self, param: Tensor) -> MomentumState:
        return MomentumState(None)

    def update(self, u: Tensor, state: MomentumState, param: Tensor, group: Group) -> tuple[Tensor, MomentumState]:
        mu = self.option(group, "momentum")
        if mu == 0:
            return u, state
        buf = state.momentum_buffer
        if buf is None:
            # torch.optim.SGD starts the buffer at the first gradient, undamped.
            buf = u.detach().clone()
            state = MomentumState(buf)
        else:
            buf.mul_(mu).add_(u, alpha=1 - self.option(group, "dampening"))
        if self.option(group, "nesterov"):
            return u.add(buf, alpha=mu), state
        return buf, state


def scale_by_momentum(
    momentum: float = 0.9, dampening: float = 0.0, nesterov: bool = False, *, mask: Mask = None
) -> ScaleByMomentum:
    """Momentum as in ``torch.optim.SGD`` (Polyak; Sutskever et al. 2013 for Nesterov).

    ``b <- momentum * b + (1 - dampening) * u`` (``b = u`` on the first step),
    then ``u <- b``, or ``u <- u + momentum * b`` with ``nesterov``. With
    ``momentum=0`` it passes ``u`` through. Group options: ``momentum``,
    ``dampening``, ``nesterov``.

    Example:
        >>> t = scale_by_momentum(0.9, nesterov=True)
    """
    owner = "scale_by_momentum"
    momentum = check.number(owner, "momentum", momentum)
    dampening = check.number(owner, "dampening", dampening, 0.0, 1.0)
    return ScaleByMomentum(momentum, dampening, check.flag(owner, "nesterov", nesterov), check_mask(mask))


class AdamState(NamedTuple):
    """Adam's moments under torch's keys; ``max_exp_avg_sq`` only with amsgrad."""

    step: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor
    max_exp_avg_sq: Tensor | None


@dataclass(frozen=True, repr=False)
class ScaleByAdam(Transform):
    """Adam's preconditioned direction; see ``scale_by_adam``."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    amsgrad: bool = False
    mask: Mask = None
    State = AdamState
    hyper = ("betas", "eps", "amsgrad")

    def init(self, param: Tensor) -> AdamState:
        z = torch.zeros_like(param, memory_format=torch.preserve_format)
        vmax = torch.zeros_like(z) if self.amsgrad else None
        return AdamState(_step_counter(param), z, torch.zeros_like(z), vmax)

    def update(self, u: Tensor, state: AdamState, param: Tensor, group: Group) -> tuple[Tensor, AdamState]:
        b1, b2 = self.option(group, "betas")
        step, m, v, vmax = state
        step += 1
        t = step.item()
        m.lerp_(u, 1 - b1)
        v.mul_(b2).addcmul_(u, u, value=1 - b2)
        if self.option(group, "amsgrad"):
            if vmax is None:
                vmax = torch.zeros_like(v)
                state = state._replace(max_exp_avg_sq=vmax)
            torch.maximum(vmax, v, out=vmax)
            v = vmax
        # One new tensor per step: the denominator's buffer takes the result.
        denom = v.sqrt().div_(math.sqrt(1 - b2**t)).add_(self.option(group, "eps"))
        return torch.div(m, denom, out=denom).div_(1 - b1**t), state


def scale_by_adam(
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    amsgrad: bool = False,
    *,
    mask: Mask = None,
) -> ScaleByAdam:
    """Adam's direction (Kingma & Ba 2015; AMSGrad: Reddi et al. 2018).

    ``m <- b1 m + (1-b1) u``, ``v <- b2 v + (1-b2) u^2`` and, at step ``t``,
    ``u <- m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``,
    ``v_hat = v / (1 - b2^t)``; ``amsgrad`` uses the running maximum of ``v``.
    Group options: ``betas``, ``eps``, ``amsgrad``.

    Example:
        >>> t = scale_by_adam(betas=(0.9, 0.95))
    """
    owner = "scale_by_adam"
    return ScaleByAdam(
        check.betas(owner, betas),
        check.number(owner, "eps", eps),
        check.flag(owner, "amsgrad", amsgrad),
        check_mask(mask),
    )


class RmsState(NamedTuple):
    """RMSprop's averages under torch's keys; ``grad_avg`` only when centered."""

    step: Tensor
    square_avg: Tensor
    grad_avg: Tensor | None


@dataclass(frozen=True, repr=False)
class ScaleByRms(Transform):
    """RMSprop's normalization; see ``scale_by_rms``."""

    alpha: float = 0.99
    eps: float = 1e-8
    centered: bool = False
    mask: Mask = None
    State = RmsState
    hyper = ("alpha", "eps", "centered")

    def init(self, param: Tensor) -> RmsState:
        z = torch.zeros_like(param, memory_format=torch.preserve_format)
        return RmsState(_step_counter(param), z, torch.zeros_like(z) if self.centered else None)

    def update(self, u: Tensor, state: RmsState, param: Tensor, group: Group) -> tuple[Tensor, RmsState]:
        alpha = self.option(group, "alpha")
        step, sq, gavg = state
        step += 1
        sq.mul_(alpha).addcmul_(u, u, value=1 - alpha)
        if self.option(group, "centered"):
            if gavg is None:
                gavg = torch.zeros_like(sq)
                state = state._replace(grad_avg=gavg)
            gavg.lerp_(u, 1 - alpha)
            avg = sq.addcmul(gavg, gavg, value=-1).sqrt_()
        else:
            avg = sq.sqrt()
        avg.add_(self.option(group, "eps"))
        return torch.div(u, avg, out=avg), state


def scale_by_rms(
    alpha: float = 0.99, eps: float = 1e-8, centered: bool = False, *, mask: Mask = None
) -> ScaleByRms:
    """RMSprop's scaling (Hinton's lecture 6e; centered: Graves 2013).

    ``s <- alpha s + (1-alpha) u^2``, ``u <- u / (sqrt(s) + eps)``; centered
    also tracks ``g <- alpha g + (1-alpha) u`` and divides by
    ``sqrt(s - g^2) + eps``. Group options: ``alpha``, ``eps``, ``centered``.

    Example:
        >>> t = scale_by_rms(alpha=0.9, centered=True)
    """
    owner = "scale_by_rms"
    return ScaleByRms(
        check.number(owner, "alpha", alpha, 0.0, 1.0),
        check.number(owner, "eps", eps),
        check.flag(owner, "centered", centered),
        check_mask(mask),
    )


class AdagradState(NamedTuple):
    """Adagrad's sum of squared updates under torch's keys."""

    step: Tensor
    sum: Tensor


@dataclass(frozen=True, repr=False)
class ScaleByAdagrad(Transform):
    """Adagrad's scaling; see ``scale_by_adagrad``."""

    lr_decay: float = 0.0
    eps: float = 1e-10
    initial_accumulator_value: float = 0.0
    mask: Mask = None
    State = AdagradState
    hyper = ("lr_decay", "eps")

    def init(self, param: Tensor) -> AdagradState:
        acc = torch.full_like(param, self.initial_accumulator_value, memory_format=torch.preserve_format)
        return AdagradState(_step_counter(param), acc)

    def update(self, u: Tensor, state: AdagradState, param: Tensor, group: Group) -> tuple[Tensor, AdagradState]:
        step, acc = state
        step += 1
        acc.addcmul_(u, u, value=1)
        den = acc.sqrt().add_(self.option(group, "eps"))
        out = torch.div(u, den, out=den)
        decay = self.option(group, "lr_decay")
        if decay:
            out.div_(1 + (step.item() - 1) * decay)
        return out, state


def scale_by_adagrad(
    lr_decay: float = 0.0, eps: float = 1e-10, initial_accumulator_value: float = 0.0, *, mask: Mask = None
) -> ScaleByAdagrad:
    """Adagrad's scaling (Duchi, Hazan & Singer 2011), as ``torch.optim.Adagrad``.

    ``G <- G + u^2``, ``u <- u / (sqrt(G) + eps) / (1 + (t - 1) lr_decay)``,
    with ``G`` starting at ``initial_accumulator_value``. Group options:
    ``lr_decay``, ``eps``.

    Example:
        >>> t = scale_by_adagrad(initial_accumulator_value=0.1)
    """
    owner = "scale_by_adagrad"
    return ScaleByAdagrad(
        check.number(owner, "lr_decay", lr_decay),
        check.number(owner, "eps", eps),
        check.number(owner, "initial_accumulator_value", initial_accumulator_value),
        check_mask(mask),
    )


@dataclass(frozen=True, repr=False)
class ScaleByLr(Transform):
    """Multiply by ``-lr`` of the parameter's group; see ``scale_by_lr``."""

    lr: float = 1e-3
    mask: Mask = None
    hyper = ("lr",)

    def update(self, u: Tensor, state: EmptyState, param: Tensor, group: Group) -> tuple[Tensor, EmptyState]:
        # lr has one home, the param group: no fallback to self.lr, which only
        # seeds the groups when the Optimizer is built.
        lr = group.get("lr")
        if lr is None:
            raise ConfigError("scale_by_lr reads lr from the param group, and this group has none; "
                              "run the chain through Optimizer (or Chain.update), which fills it in")
        return u * -(check.as_float(lr) if u.is_sparse else lr), state


def scale_by_lr(lr: float | Tensor = 1e-3, *, mask: Mask = None) -> ScaleByLr:
    """``u <- -lr * u``, with ``lr`` read from each param group at step time.

    ``lr`` here only seeds the group option ``lr`` when :class:`Optimizer`
    is built (an ``lr=`` given to the Optimizer wins); from then on the
    group holds the one value: torch LR schedulers, per-group learning
    rates and :func:`gradwise.optim.scale_lr` change ``group["lr"]``, and
    this transform reads it there. The sign flip makes the chain's output
    the step that is added to the parameter.

    Example:
        >>> t = scale_by_lr(0.1)
    """
    return ScaleByLr(check.lr("scale_by_lr", lr), check_mask(mask))


@dataclass(frozen=True, repr=False)
class ClipByGlobalNorm(Transform):
    """Rescale all updates together; see ``clip_by_global_norm``."""

    max_norm: float = 1.0
    tree = True

    def update_tree(self, updates: Sequence[Tensor]) -> list[Tensor]:
        """Scale every update by ``min(1, max_norm / (||(u_1, ..., u_n)||_2 + 1e-6))``."""
        if not updates:
            return []
        device = updates[0].device
        norms = torch.stack([torch.linalg.vector_norm(u).to(device) for u in updates])
        coef = torch.clamp(self.max_norm / (torch.linalg.vector_norm(norms) + 1e-6), max=1.0)
        return [u * coef.to(u.device) for u in updates]


def clip_by_global_norm(max_norm: float) -> ClipByGlobalNorm:
    """Clip the joint L2 norm of all updates to ``max_norm`` (Pascanu et al. 2013).

    Same rule as ``torch.nn.utils.clip_grad_norm_``: all updates are scaled
    by ``min(1, max_norm / (norm + 1e-6))``, where ``norm`` is taken over every
    parameter of the optimizer. Put it first to clip gradients.

    Example:
        >>> t = clip_by_global_norm(1.0)
    """
    return ClipByGlobalNorm(check.number("clip_by_global_norm", "max_norm", max_norm))
