"""Weight decay, coupled and decoupled, and the proximal step of a penalty.

Coupled L2 (``add_l2``) adds ``wd * w`` to the gradient *before* the
preconditioner: it is the gradient of ``wd / 2 * ||w||^2`` added to the loss.
Decoupled decay (``add_decayed_weights``, Loshchilov & Hutter 2019) adds
``wd * w`` *after* it, right before ``scale_by_lr``, so the step is::

    coupled:    w <- w - lr * P(g + wd * w)
    decoupled:  w <- w - lr * P(g) - lr * wd * w

where ``P`` is what the chain does to the gradient (momentum, Adam's
``m_hat / (sqrt(v_hat) + eps)``). For plain SGD (``P`` = identity) the two are
the same. For adaptive methods they are not: under coupled L2 the decay term
is divided by ``sqrt(v_hat)``, so weights with large gradients are barely
regularized, while decoupled decay shrinks every weight by the same factor
``1 - lr * wd`` per step, whatever its gradient history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from gradwise.optim import _validate as check
from gradwise.optim._base import EmptyState, Group, Transform
from gradwise.regularization import Mask, Penalty, check_mask
from gradwise.regularization._penalties import Factor


@dataclass(frozen=True, repr=False)
class AddL2(Transform):
    """Coupled L2: ``u <- u + weight_decay * w``; see ``add_l2``."""

    weight_decay: float = 0.0
    mask: Mask = "auto"
    hyper = ("weight_decay",)

    def update(self, u: Tensor, state: EmptyState, param: Tensor, group: Group) -> tuple[Tensor, EmptyState]:
        wd = self.option(group, "weight_decay")
        return (u.add(param, alpha=wd) if wd else u), state


def add_l2(weight_decay: float, *, mask: Mask = "auto") -> AddL2:
    """Coupled L2 regularization: ``u <- u + weight_decay * w``.

    Place it first in a chain, on the gradient: it equals adding
    ``weight_decay / 2 * ||w||^2`` to the loss, and is what
    ``torch.optim.Adam(weight_decay=...)`` and ``SGD(weight_decay=...)`` do.
    ``mask="auto"`` skips biases and norm weights; group option
    ``weight_decay``.

    Example:
        >>> t = add_l2(1e-4, mask="all")
    """
    return AddL2(check.number("add_l2", "weight_decay", weight_decay), check_mask(mask))


@dataclass(frozen=True, repr=False)
class AddDecayedWeights(Transform):
    """Decoupled decay: ``u <- u + weight_decay * w``; see ``add_decayed_weights``."""

    weight_decay: float = 0.0
    mask: Mask = "auto"
    hyper = ("weight_decay",)

    def update(self, u: Tensor, state: EmptyState, param: Tensor, group: Group) -> tuple[Tensor, EmptyState]:
        wd = self.option(group, "weight_decay")
        return (u.add(param, alpha=wd) if wd else u), state


def add_decayed_weights(weight_decay: float, *, mask: Mask = "auto") -> AddDecayedWeights:
    """Decoupled weight decay (Loshchilov & Hutter 2019): ``u <- u + weight_decay * w``.

    Place it after the preconditioner and before ``scale_by_lr``; the step is
    then ``w <- w - lr * (P(g) + weight_decay * w)``, i.e. every weight
    shrinks by ``1 - lr * weight_decay``, as in ``torch.optim.AdamW``.
    ``mask="auto"`` skips biases and norm weights; group option
    ``weight_decay``.

    Example:
        >>> t = add_decayed_weights(0.01)
    """
    return AddDecayedWeights(
        check.number("add_decayed_weights", "weight_decay", weight_decay), check_mask(mask)
    )


@dataclass(frozen=True, repr=False)
class Prox(Transform):
    """Proximal step after the gradient step; see ``prox``."""

    penalty: Penalty
    post_step = True

    @property
    def mask(self) -> Mask:
        """The penalty's mask."""
        return self.penalty.mask

    def update(self, u: Tensor, state: EmptyState, param: Tensor, group: Group) -> tuple[Tensor, EmptyState]:
        return u, state

    def apply(self, param: Tensor, step: float, factor: Factor) -> None:
        """Replace ``param`` by ``prox_{step * penalty}(param)``, in place."""
        self.penalty.prox(param, step, factor)


def prox(penalty: Penalty) -> Prox:
    """Proximal step of ``penalty`` after the gradient step (proximal gradient).

    The optimizer first applies the chain's update, ``w' = w + u``, then sets
    ``w <- prox_{lr * penalty}(w')`` with ``lr`` the group's learning rate.
    For ``L1(lam)`` that is the soft-threshold ``S(w', lr * lam)``, which
    leaves exact zeros; with SGD it is ISTA.

    Threshold under adaptive optimizers: the step is the scalar ``lr``, not
    Adam's per-coordinate ``lr / (sqrt(v_hat) + eps)``. This makes the
    proximal step decoupled in the sense of AdamW: every weight gets the same
    shrinkage ``lr * lam`` per step whatever its gradient history, so ``lam``
    means the same under SGD and Adam, the zeros do not depend on noisy second
    moments, and it costs one pass over the weights. The per-coordinate
    variant would be the exact prox in Adam's metric, but then a weight with a
    tiny ``v_hat`` is thresholded by up to ``lr * lam / eps`` and zeroed at once.

    Must be the last transform of a chain; its mask is the penalty's.

    Example:
        >>> from gradwise.regularization import L1
        >>> t = prox(L1(1e-4))
    """
    if not isinstance(penalty, Penalty):
        raise TypeError(
            "prox needs a penalty with value, prox, factor_for and mask, such as "
            f"gradwise.regularization.L1(lam); got {type(penalty).__name__}"
        )
    return Prox(penalty)


def prox_runner(prox: Prox, params: Sequence[Tensor], factors: Sequence[Factor]) -> Callable[[float], None]:
    """``apply_prox`` on fixed ``(params, factors)``, with its choices made once.

    The fused and delegate paths call the result on every step with the
    group's ``lr`` (a float): the checks of ``apply_prox`` (Tensor factors, a
    batched ``prox_many``, one factor shared by every tensor) are done here,
    at cache build time. A penalty with a ``prox_plan`` (``ElasticNet`` and
    its ``L1``, ``L2``) builds its own runner, which thresholds the small
    tensors in one call (``gradwise.regularization._shrink``).
    """
    params, factors = list(params), list(factors)
    many = getattr(prox.penalty, "prox_many", None)
    if many is None or any(isinstance(f, Tensor) for f in factors):
        return lambda lr: apply_prox(prox, (params, factors), lr)
    plan = getattr(prox.penalty, "prox_plan", None)
    if plan is not None:  # ElasticNet's: the small tensors' soft-threshold in one call
        return plan(params, factors)
    shared = factors[0] if factors and all(f == factors[0] for f in factors) else None
    if shared is not None:
        return lambda lr: many(params, lr, shared)
    return lambda lr: many(params, lr, factors)


def apply_prox(prox: Prox, targets: tuple[Sequence[Tensor], Sequence[Factor]], lr: Any) -> None:
    """Proximal step with step size ``lr`` (a number or a Tensor lr) on ``(params, factors)``, in place."""
    params, factors = targets
    step = check.as_float(lr)
    many = getattr(prox.penalty, "prox_many", None)
    if many is not None and not any(isinstance(f, Tensor) for f in factors):
        many(params, step, factors)
        return
    for p, f in zip(params, factors):
        prox.apply(p, step, f)
