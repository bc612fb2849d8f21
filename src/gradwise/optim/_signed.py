"""Transforms that make the whole step themselves: Rprop and ASGD.

Rprop's learning rate is only the initial per-coordinate step size, and
ASGD's is folded into its own decaying step ``eta``; so Rprop returns the
signed step (what ``scale_by_lr`` returns elsewhere) and ASGD moves the
parameter itself (``moves_param``); a chain ends with them (or with a
``prox``), not with ``scale_by_lr``. Both read
``lr`` from the param group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from gradwise.errors import ConfigError
from gradwise.optim import _validate as check
from gradwise.optim._adaptive import _scalar
from gradwise.optim._base import Group, Transform
from gradwise.optim._transforms import _step_counter
from gradwise.regularization import Mask, check_mask


class RpropState(NamedTuple):
    """Rprop's state under torch's keys; ``step_size`` starts at the group's ``lr``."""

    step: Tensor
    prev: Tensor
    step_size: Tensor | None


@dataclass(frozen=True, repr=False)
class Rprop(Transform):
    """Resilient backpropagation; see ``rprop_step``."""

    lr: float = 1e-2
    etas: tuple[float, float] = (0.5, 1.2)
    step_sizes: tuple[float, float] = (1e-6, 50.0)
    mask: Mask = None
    State = RpropState
    hyper = ("lr", "etas", "step_sizes")

    def init(self, param: Tensor) -> RpropState:
        return RpropState(_step_counter(param), torch.zeros_like(param, memory_format=torch.preserve_format),
                          None)

    def update(self, u: Tensor, state: RpropState, param: Tensor, group: Group) -> tuple[Tensor, RpropState]:
        eta_minus, eta_plus = self.option(group, "etas")
        lo, hi = self.option(group, "step_sizes")
        step, prev, size = state
        step += 1
        if size is None:
            size = torch.full_like(u, check.as_float(self.option(group, "lr")))
            state = RpropState(step, prev, size)
        sign = u.mul(prev).sign()
        flipped = sign.lt(0)
        factor = sign.masked_fill_(sign.gt(0), eta_plus).masked_fill_(flipped, eta_minus)
        factor.masked_fill_(factor.eq(0), 1.0)
        size.mul_(factor).clamp_(lo, hi)
        # After a sign change the gradient is forgotten: no step, and no
        # sign comparison at the next step.
        g = u.masked_fill(flipped, 0)
        prev.copy_(g)
        return g.sign_().mul_(size).neg_(), state


def rprop_step(
    lr: float = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50.0),
    *,
    mask: Mask = None,
) -> Rprop:
    """Rprop's signed step (Riedmiller & Braun 1993), as ``torch.optim.Rprop``.

    Each coordinate has its own step size ``s`` (starting at ``lr``): where
    ``u * u_prev > 0`` it grows, ``s <- min(s * eta_plus, max_step)``; where
    it changes sign ``s <- max(s * eta_minus, min_step)`` and that coordinate
    does not move (its ``u`` is set to 0). The step is ``-sign(u) * s``.
    Group options: ``lr``, ``etas``, ``step_sizes``.

    Example:
        >>> t = rprop_step(1e-3, etas=(0.5, 1.2))
    """
    owner = "rprop"
    e = _pair(owner, "etas", etas)
    if not 0.0 < e[0] < 1.0 < e[1]:
        raise ConfigError(f"{owner}: etas must satisfy 0 < etaminus < 1 < etaplus; got {etas!r}")
    s = _pair(owner, "step_sizes", step_sizes)
    if s[0] > s[1]:
        raise ConfigError(f"{owner}: step_sizes must be (min, max) with min <= max; got {step_sizes!r}")
    return Rprop(check.lr(owner, lr), e, s, check_mask(mask))


def _pair(owner: str, field: str, value: object) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(f"{owner}: {field} must be a pair of numbers; got {value!r}")
    return (check.number(owner, f"{field}[0]", value[0]), check.number(owner, f"{field}[1]", value[1]))


class AsgdState(NamedTuple):
    """ASGD's state under torch's keys: step size ``eta``, averaging rate ``mu``, average ``ax``."""

    step: Tensor
    eta: Tensor | None
    mu: Tensor
    ax: Tensor


@dataclass(frozen=True, repr=False)
class Asgd(Transform):
    """Averaged SGD; see ``asgd_step``."""

    lr: float = 1e-2
    lambd: float = 1e-4
    alpha: float = 0.75
    t0: float = 1e6
    mask: Mask = None
    State = AsgdState
    hyper = ("lr", "lambd", "alpha", "t0")
    moves_param = True

    def init(self, param: Tensor) -> AsgdState:
        return AsgdState(_step_counter(param), None, _scalar(1.0, param),
                         torch.zeros_like(param, memory_format=torch.preserve_format))

    def update(self, u: Tensor, state: AsgdState, param: Tensor, group: Group) -> tuple[None, AsgdState]:
        lr = check.as_float(self.option(group, "lr"))
        lambd, alpha, t0 = (self.option(group, k) for k in ("lambd", "alpha", "t0"))
        step, eta, mu, ax = state
        if eta is None:
            eta = _scalar(lr, param)
            state = state._replace(eta=eta)
        step += 1
        e = eta.item()
        param.mul_(1 - lambd * e).add_(u, alpha=-e)  # torch's order and arithmetic
        if mu.item() != 1:
            ax.add_(param.sub(ax).mul_(mu))
        else:
            ax.copy_(param)
        t = step.item()
        eta.copy_(torch.as_tensor(lr / ((1 + lambd * lr * t) ** alpha)))
        mu.copy_(torch.as_tensor(1 / max(1, t - t0)))
        return None, state


def asgd_step(
    lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6, *, mask: Mask = None
) -> Asgd:
    """Averaged SGD's step (Polyak & Juditsky 1992), as ``torch.optim.ASGD``.

    ``w <- w (1 - lambd eta_t) - eta_t u`` with ``eta_t = lr / (1 + lambd lr t)^alpha``,
    and the average ``ax <- ax + mu_t (w - ax)``, ``mu_t = 1 / max(1, t - t0)``:
    averaging starts after step ``t0``. ``ax`` is kept in the state
    (``optimizer.state[p]["ax"]``), as torch does. Group options: ``lr``,
    ``lambd``, ``alpha``, ``t0``.

    Example:
        >>> t = asgd_step(0.01, t0=100)
    """
    owner = "asgd"
    return Asgd(check.lr(owner, lr), check.number(owner, "lambd", lambd),
                check.number(owner, "alpha", alpha), check.number(owner, "t0", t0), check_mask(mask))
