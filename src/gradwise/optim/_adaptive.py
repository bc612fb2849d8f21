"""More adaptive scalings from torch.optim: NAdam, RAdam, Adamax, Adadelta.

Each transform maps the (decayed) gradient ``u`` to the direction that
``scale_by_lr`` turns into the step, computing what the torch.optim class does
per tensor in the same order of operations; state keys are torch's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from gradwise.optim import _validate as check
from gradwise.optim._base import Group, Transform
from gradwise.optim._transforms import _step_counter
from gradwise.regularization import Mask, check_mask


def _scalar(value: float, param: Tensor) -> Tensor:
    # torch keeps NAdam's mu_product and ASGD's eta/mu as 0-dim tensors of its
    # scalar dtype (float32 unless the default dtype is float64); the products
    # are rounded there, so ours are too.
    dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    return torch.tensor(value, dtype=dtype, device=param.device)


class NadamState(NamedTuple):
    """NAdam's state under torch's keys."""

    step: Tensor
    mu_product: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor


@dataclass(frozen=True, repr=False)
class ScaleByNadam(Transform):
    """Nesterov-accelerated Adam's direction; see ``scale_by_nadam``."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum_decay: float = 4e-3
    mask: Mask = None
    State = NadamState
    hyper = ("betas", "eps", "momentum_decay")

    def init(self, param: Tensor) -> NadamState:
        z = torch.zeros_like(param, memory_format=torch.preserve_format)
        return NadamState(_step_counter(param), _scalar(1.0, param), z, torch.zeros_like(z))

    def update(self, u: Tensor, state: NadamState, param: Tensor, group: Group) -> tuple[Tensor, NadamState]:
        b1, b2 = self.option(group, "betas")
        psi = self.option(group, "momentum_decay")
        step, mu_product, m, v = state
        step += 1
        t = step.item()
        mu = b1 * (1.0 - 0.5 * (0.96 ** (t * psi)))
        mu_next = b1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * psi)))
        mu_product *= mu
        prod = mu_product.item()
        m.lerp_(u, 1 - b1)
        v.mul_(b2).addcmul_(u, u, value=1 - b2)
        denom = v.div(1 - b2**t).sqrt_().add_(self.option(group, "eps"))
        out = u.div(denom).mul_((1.0 - mu) / (1.0 - prod))
        return out.addcdiv_(m, denom, value=mu_next / (1.0 - prod * mu_next)), state


def scale_by_nadam(
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    momentum_decay: float = 4e-3,
    *,
    mask: Mask = None,
) -> ScaleByNadam:
    """NAdam's direction (Dozat 2016), as ``torch.optim.NAdam``.

    With the momentum schedule ``mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay))``
    and ``P_t = mu_1 ... mu_t``: ``m, v`` as Adam, then
    ``u <- (1 - mu_t) / (1 - P_t) * u / d + mu_{t+1} / (1 - P_t mu_{t+1}) * m / d``
    with ``d = sqrt(v / (1 - b2^t)) + eps``. Group options: ``betas``, ``eps``,
    ``momentum_decay``.

    Example:
        >>> t = scale_by_nadam(momentum_decay=6e-3)
    """
    owner = "scale_by_nadam"
    return ScaleByNadam(check.betas(owner, betas), check.number(owner, "eps", eps),
                        check.number(owner, "momentum_decay", momentum_decay), check_mask(mask))


class RadamState(NamedTuple):
    """RAdam's state under torch's keys."""

    step: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor


@dataclass(frozen=True, repr=False)
class ScaleByRadam(Transform):
    """Rectified Adam's direction; see ``scale_by_radam``."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    mask: Mask = None
    State = RadamState
    hyper = ("betas", "eps")

    def init(self, param: Tensor) -> RadamState:
        z = torch.zeros_like(param, memory_format=torch.preserve_format)
        return RadamState(_step_counter(param), z, torch.zeros_like(z))

    def update(self, u: Tensor, state: RadamState, param: Tensor, group: Group) -> tuple[Tensor, RadamState]:
        b1, b2 = self.option(group, "betas")
        step, m, v = state
        step += 1
        t = step.item()
        m.lerp_(u, 1 - b1)
        v.mul_(b2).addcmul_(u, u, value=1 - b2)
        bc2 = 1 - b2**t
        m_hat = m / (1 - b1**t)
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * (b2**t) / bc2
        if rho_t <= 5.0:
            return m_hat, state  # variance not yet tractable: momentum SGD
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        adaptive = (bc2**0.5) / v.sqrt().add_(self.option(group, "eps"))
        return m_hat.mul_(adaptive).mul_(rect), state


def scale_by_radam(
    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, *, mask: Mask = None
) -> ScaleByRadam:
    """Rectified Adam's direction (Liu et al. 2020), as ``torch.optim.RAdam``.

    ``rho_inf = 2 / (1 - b2) - 1``, ``rho_t = rho_inf - 2 t b2^t / (1 - b2^t)``;
    while ``rho_t <= 5`` the direction is ``m_hat``, then
    ``r_t * m_hat * sqrt(1 - b2^t) / (sqrt(v) + eps)`` with the rectifier
    ``r_t = sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t))``.
    Group options: ``betas``, ``eps``.

    Example:
        >>> t = scale_by_radam()
    """
    owner = "scale_by_radam"
    return ScaleByRadam(check.betas(owner, betas), check.number(owner, "eps", eps), check_mask(mask))


class AdamaxState(NamedTuple):
    """Adamax's state under torch's keys."""

    step: Tensor
    exp_avg: Tensor
    exp_inf: Tensor


@dataclass(frozen=True, repr=False)
class ScaleByAdamax(Transform):
    """Adam's infinity-norm variant; see ``scale_by_adamax``."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    mask: Mask = None
    State = AdamaxState
    hyper = ("betas", "eps")

    def init(self, param: Tensor) -> AdamaxState:
        z = torch.zeros_like(param, memory_format=torch.preserve_format)
        return AdamaxState(_step_counter(param), z, torch.zeros_like(z))

    def update(self, u: Tensor, state: AdamaxState, param: Tensor, group: Group) -> tuple[Tensor, AdamaxState]:
        b1, b2 = self.option(group, "betas")
        step, m, inf = state
        step += 1
        m.lerp_(u, 1 - b1)
        tmp = u.abs().add_(self.option(group, "eps"))
        torch.maximum(inf.mul_(b2), tmp, out=inf)
        return torch.div(m, inf, out=tmp).div_(1 - b1 ** step.item()), state  # tmp's buffer reused


def scale_by_adamax(
    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, *, mask: Mask = None
) -> ScaleByAdamax:
    """Adamax's direction (Kingma & Ba 2015, section 7), as ``torch.optim.Adamax``.

    ``m <- b1 m + (1-b1) u``, ``n <- max(b2 n, |u| + eps)``,
    ``u <- m / n / (1 - b1^t)``. Group options: ``betas``, ``eps``.

    Example:
        >>> t = scale_by_adamax(betas=(0.9, 0.99))
    """
    owner = "scale_by_adamax"
    return ScaleByAdamax(check.betas(owner, betas), check.number(owner, "eps", eps), check_mask(mask))


class AdadeltaState(NamedTuple):
    """Adadelta's state under torch's keys."""

    step: Tensor
    square_avg: Tensor
    acc_delta: Tensor


@dataclass(frozen=True, repr=False)
class ScaleByAdadelta(Transform):
    """Adadelta's unit-corrected direction; see ``scale_by_adadelta``."""

    rho: float = 0.9
    eps: float = 1e-6
    mask: Mask = None
    State = AdadeltaState
    hyper = ("rho", "eps")

    def init(self, param: Tensor) -> AdadeltaState:
        z = torch.zeros_like(param, memory_format=torch.preserve_format)
        return AdadeltaState(_step_counter(param), z, torch.zeros_like(z))

    def update(self, u: Tensor, state: AdadeltaState, param: Tensor, group: Group) -> tuple[Tensor, AdadeltaState]:
        rho, eps = self.option(group, "rho"), self.option(group, "eps")
        step, sq, acc = state
        step += 1
        sq.mul_(rho).addcmul_(u, u, value=1 - rho)
        std = sq.add(eps).sqrt_()
        delta = acc.add(eps).sqrt_().div_(std).mul_(u)
        acc.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        return delta, state


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6, *, mask: Mask = None) -> ScaleByAdadelta:
    """Adadelta's direction (Zeiler 2012), as ``torch.optim.Adadelta``.

    ``s <- rho s + (1-rho) u^2``, ``d = sqrt(a + eps) / sqrt(s + eps) * u``,
    ``a <- rho a + (1-rho) d^2``, ``u <- d`` (torch then scales by ``lr``,
    default 1). Group options: ``rho``, ``eps``.

    Example:
        >>> t = scale_by_adadelta(rho=0.95)
    """
    owner = "scale_by_adadelta"
    return ScaleByAdadelta(check.number(owner, "rho", rho, 0.0, 1.0), check.number(owner, "eps", eps),
                           check_mask(mask))
