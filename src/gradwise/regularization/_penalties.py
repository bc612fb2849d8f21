"""Penalties L1, L2 and ElasticNet with exact, in-place proximal operators.

All three are one family, glmnet's elastic net::

    P(w) = lam * sum_i f_i * (alpha * |w_i| + (1 - alpha) / 2 * w_i**2)

with ``alpha = 1`` the lasso (L1), ``alpha = 0`` ridge (L2) and ``f_i >= 0`` an
optional per-parameter penalty factor (glmnet's ``penalty.factor``). Its
proximal operator with step ``s``,

    prox_{s P}(v) = argmin_w 1/2 ||w - v||^2 + s * P(w)
                  = S(v, s * lam * alpha * f) / (1 + s * lam * (1 - alpha) * f),

with the soft-threshold ``S(v, t) = sign(v) * max(|v| - t, 0)``, has a closed
form, so a gradient step followed by it (proximal gradient, ISTA) sets small
weights to exactly zero instead of letting them hover around it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from gradwise.errors import ConfigError, unknown
from gradwise.regularization._masks import Mask, check_mask, named_tensors, selects
from gradwise.regularization._shrink import _SOFTSHRINK, ShrinkBatch

Factor = float | Tensor
FactorSpec = Mapping[str, Factor] | Callable[[str | None, Tensor], Factor] | None
Params = nn.Module | Iterable[Tensor] | Iterable[tuple[str, Tensor]]


@runtime_checkable
class Penalty(Protocol):
    """What ``gradwise.optim.prox`` needs from a penalty.

    ``value(params)`` is the penalty as a differentiable scalar, ``prox(tensor,
    step, factor)`` its proximal operator applied in place, ``factor_for(name,
    param)`` the penalty factor of one parameter and ``mask`` the parameters it
    acts on. Implement these to bring your own penalty (group lasso, say).
    """

    mask: Mask

    def value(self, params: Params) -> Tensor: ...

    def prox(self, tensor: Tensor, step: float, factor: Factor = 1.0) -> Tensor: ...

    def factor_for(self, name: str | None, param: Tensor) -> Factor: ...


def _check_number(owner: str, field: str, value: object, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{owner}: {field} must be a number; got {value!r}")
    value = float(value)
    if value < low or (high is not None and value > high) or math.isinf(value):
        allowed = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g} and finite"
        raise ConfigError(f"{owner}: {field} must be {allowed}; got {value!r}")
    return value


def _check_factor_spec(owner: str, factor: FactorSpec) -> FactorSpec:
    if factor is None or callable(factor) or isinstance(factor, Mapping):
        return factor
    raise ConfigError(
        f"{owner}: factor must be None, a mapping from name patterns to factors or a "
        f"callable (name, param) -> factor; got {factor!r}"
    )


class ElasticNet:
    """Elastic-net penalty ``lam * (alpha * ||w||_1 + (1 - alpha) / 2 * ||w||_2^2)``.

    This is glmnet's parametrization: ``ElasticNet(lam=a, alpha=r)`` on a
    least-squares loss ``1/(2n) ||y - Xw||^2`` is scikit-learn's
    ``ElasticNet(alpha=a, l1_ratio=r)``.

    Args:
        lam: overall strength, ``>= 0``.
        alpha: mix of L1 and L2 in ``[0, 1]``: 1 is the lasso, 0 is ridge.
        mask: parameters penalized (see ``gradwise.regularization``'s masks);
            the default ``"auto"`` leaves out biases and norm weights.
        factor: per-parameter penalty factor ``f >= 0`` (glmnet's
            ``penalty.factor``): a mapping from name patterns to a float or a
            tensor broadcastable to the parameter (first match wins, others get
            1), or a callable ``(name, param) -> factor``.

    Example:
        >>> import torch
        >>> pen = ElasticNet(lam=0.1, alpha=0.5)
        >>> pen.prox(torch.tensor([[0.02, -1.0]]), step=1.0)
        tensor([[ 0.0000, -0.9048]])
    """

    def __init__(
        self,
        lam: float,
        alpha: float,
        *,
        mask: Mask = "auto",
        factor: FactorSpec = None,
    ) -> None:
        owner = type(self).__name__
        self.lam = _check_number(owner, "lam", lam, 0.0, None)
        self.alpha = _check_number(owner, "alpha", alpha, 0.0, 1.0)
        self.mask = check_mask(mask, f"{owner}: mask")
        self.factor = _check_factor_spec(owner, factor)

    @property
    def l1(self) -> float:
        """Strength of the L1 part, ``lam * alpha``."""
        return self.lam * self.alpha

    @property
    def l2(self) -> float:
        """Strength of the L2 part, ``lam * (1 - alpha)``."""
        return self.lam * (1.0 - self.alpha)

    def __repr__(self) -> str:
        extra = "" if self.mask == "auto" else f", mask={self.mask!r}"
        return f"ElasticNet(lam={self.lam:g}, alpha={self.alpha:g}{extra})"

    def factor_for(self, name: str | None, param: Tensor) -> Factor:
        """The penalty factor of parameter ``name`` (1 unless ``factor`` says otherwise)."""
        spec = self.factor
        if spec is None:
            return 1.0
        if callable(spec):
            f = spec(name, param)
        else:
            if name is None:
                raise ConfigError(
                    f"{type(self).__name__}: factor patterns {list(spec)!r} need parameter "
                    "names: pass model.named_parameters() or use a callable factor"
                )
            f = next((v for pat, v in spec.items() if fnmatchcase(name, pat)), 1.0)
        if isinstance(f, Tensor):
            if bool((f < 0).any()):
                raise ConfigError(f"{type(self).__name__}: penalty factor of {name!r} has negative entries")
            return f
        return _check_number(type(self).__name__, f"factor of {name!r}", f, 0.0, None)

    def value(self, params: Params) -> Tensor:
        """The penalty of the selected parameters, a scalar tensor to add to a loss.

        ``params`` is a module, ``named_parameters()`` or plain tensors (then
        only the ``"auto"``, ``"all"`` and callable masks apply).
        """
        total: Tensor | None = None
        for name, w in named_tensors(params):
            if not selects(self.mask, name, w):
                continue
            f = self.factor_for(name, w)
            if isinstance(f, Tensor):
                term = (f * (self.l1 * w.abs() + 0.5 * self.l2 * w * w)).sum()
            else:
                term = w.new_zeros(())
                if self.l1:
                    term = term + self.l1 * w.abs().sum()
                if self.l2:
                    term = term + 0.5 * self.l2 * w.pow(2).sum()
                term = f * term
            total = term if total is None else total + term
        return torch.zeros(()) if total is None else total

    def prox(self, tensor: Tensor, step: float, factor: Factor = 1.0) -> Tensor:
        """Apply ``prox_{step * P}`` to ``tensor`` in place and return it.

        ``S(v, step * l1 * f) / (1 + step * l2 * f)``: entries with
        ``|v| <= step * l1 * f`` become exactly zero.
        """
        step = _check_number(type(self).__name__, "step", step, 0.0, None)
        with torch.no_grad():
            if isinstance(factor, Tensor):
                factor = factor.to(device=tensor.device, dtype=tensor.dtype)
                if self.l1:
                    t = factor * (step * self.l1)
                    tensor.sub_(torch.clamp(tensor, -t, t))
                if self.l2:
                    tensor.div_(1.0 + factor * (step * self.l2))
            else:
                factor = _check_number(type(self).__name__, "factor", factor, 0.0, None)
                self.prox_many([tensor], step, [factor])
        return tensor

    def prox_many(self, tensors: Sequence[Tensor], step: float, factors: Sequence[float] | float) -> None:
        """``prox`` over many tensors with float factors, in place, without checks.

        ``factors`` is one float per tensor, or one float shared by all. The
        optimizer calls this inside ``torch.no_grad()`` on every step, so it
        skips validation and keeps one kernel launch per tensor and part.
        """
        l1, l2 = step * self.l1, step * self.l2
        # One loop per part, the op bound once: with hundreds of small
        # tensors the Python overhead per call is most of the cost.
        shrink = _SOFTSHRINK
        if isinstance(factors, (int, float)):
            if l1:
                t = l1 * factors
                for x in tensors:
                    shrink(x, t, out=x)
            if l2:
                d = 1.0 + l2 * factors
                for x in tensors:
                    x.div_(d)
            return
        if l1:
            for x, f in zip(tensors, factors):
                shrink(x, l1 * f, out=x)
        if l2:
            for x, f in zip(tensors, factors):
                x.div_(1.0 + l2 * f)

    def prox_plan(self, tensors: Sequence[Tensor], factors: Sequence[float]) -> Callable[[float], None]:
        """``prox_many`` on fixed tensors and float factors, as a function of the step.

        The optimizer builds it once per param group and calls it with the
        group's ``lr`` on every step. The soft-threshold runs through
        :class:`~gradwise.regularization._shrink.ShrinkBatch`: the small CPU
        tensors in one call instead of one kernel launch each. Results equal
        ``prox_many(tensors, step, factors)``.

        Example:
            >>> import torch
            >>> ws = [torch.tensor([0.3, -2.0])]
            >>> L1(0.5).prox_plan(ws, [1.0])(1.0); ws
            [tensor([ 0.0000, -1.5000])]
        """
        tensors, factors = list(tensors), [float(f) for f in factors]
        shrink = ShrinkBatch(tensors, factors)

        def run(step: float) -> None:
            # Read lam and alpha on each call, as prox_many does.
            l1, l2 = step * self.l1, step * self.l2
            if l1:
                shrink(l1)
            if l2:
                for x, f in zip(tensors, factors):
                    x.div_(1.0 + l2 * f)

        return run


class L1(ElasticNet):
    """Lasso penalty ``lam * ||w||_1``; its prox is the soft-threshold ``S(v, step * lam)``.

    Example:
        >>> import torch
        >>> L1(0.5).prox(torch.tensor([[0.3, -2.0]]), step=1.0)
        tensor([[ 0.0000, -1.5000]])
    """

    def __init__(self, lam: float, *, mask: Mask = "auto", factor: FactorSpec = None) -> None:
        super().__init__(lam, 1.0, mask=mask, factor=factor)

    def __repr__(self) -> str:
        return f"L1(lam={self.lam:g})"


class L2(ElasticNet):
    """Ridge penalty ``lam / 2 * ||w||_2^2``; its prox is ``v / (1 + step * lam)``.

    Its gradient ``lam * w`` is coupled weight decay ``weight_decay=lam``.

    Example:
        >>> import torch
        >>> L2(1.0).prox(torch.tensor([[2.0]]), step=1.0)
        tensor([[1.]])
    """

    def __init__(self, lam: float, *, mask: Mask = "auto", factor: FactorSpec = None) -> None:
        super().__init__(lam, 0.0, mask=mask, factor=factor)

    def __repr__(self) -> str:
        return f"L2(lam={self.lam:g})"


PENALTY_KINDS = ("l1", "l2", "elastic_net")


def penalty(kind: str, lam: float, alpha: float | None = None, *, mask: Mask = "auto") -> ElasticNet:
    """Build a penalty from a config entry such as ``{kind: elastic_net, lam: 0.01, alpha: 0.5}``.

    ``kind`` is ``l1``, ``l2`` or ``elastic_net``; ``alpha`` belongs to
    ``elastic_net`` only (and is required there).

    >>> penalty("elastic_net", 0.01, 0.5)
    ElasticNet(lam=0.01, alpha=0.5)
    """
    if kind not in PENALTY_KINDS:
        raise unknown("penalty kind", str(kind), PENALTY_KINDS)
    if kind == "elastic_net":
        if alpha is None:
            raise ConfigError("penalty elastic_net needs alpha in [0, 1] (1 = lasso, 0 = ridge)")
        return ElasticNet(lam, alpha, mask=mask)
    if alpha is not None:
        raise ConfigError(f"penalty {kind} takes no alpha (got {alpha!r}); use kind elastic_net")
    return (L1 if kind == "l1" else L2)(lam, mask=mask)
