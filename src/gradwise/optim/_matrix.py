"""Transforms that use a parameter's matrix shape: Adafactor's factored second moment, Muon.

Both compute what the torch.optim class does per tensor, with torch's state
keys, and return a direction that ``scale_by_lr`` turns into the step, so that
decay, masks and ``prox`` compose with them as with Adam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from gradwise.errors import ConfigError
from gradwise.optim import _validate as check
from gradwise.optim._base import Group, Transform
from gradwise.optim._transforms import _step_counter
from gradwise.regularization import Mask, check_mask


class AdafactorState(NamedTuple):
    """Adafactor's state under torch's keys: row/column statistics for matrices, else ``variance``."""

    step: Tensor
    row_var: Tensor | None
    col_var: Tensor | None
    variance: Tensor | None


@dataclass(frozen=True, repr=False)
class ScaleByAdafactor(Transform):
    """Adafactor's direction; see ``scale_by_adafactor``."""

    lr: float = 1e-2
    beta2_decay: float = -0.8
    eps: tuple[float | None, float] = (None, 1e-3)
    d: float = 1.0
    mask: Mask = None
    State = AdafactorState
    hyper = ("lr", "beta2_decay", "eps", "d")

    def init(self, param: Tensor) -> AdafactorState:
        step = _step_counter(param).cpu()
        if param.dim() > 1:
            row = param.new_zeros((*param.shape[:-1], 1))
            col = param.new_zeros((*param.shape[:-2], 1, param.shape[-1]))
            return AdafactorState(step, row, col, None)
        return AdafactorState(step, None, None, torch.zeros_like(param, memory_format=torch.preserve_format))

    def update(self, u: Tensor, state: AdafactorState, param: Tensor, group: Group) -> tuple[Tensor, AdafactorState]:
        lr = check.as_float(self.option(group, "lr"))
        eps1, eps2 = self.option(group, "eps")
        if eps1 is None:
            eps1 = torch.finfo(param.dtype).eps
        step, row, col, var = state
        step += 1
        t = step.item()
        one_minus_beta2 = t ** self.option(group, "beta2_decay")
        rho = min(lr, 1 / (t**0.5))
        # The relative step size uses the weights before this step's decay.
        alpha = max(eps2, param.norm(2).item() / (param.numel() ** 0.5)) * rho
        if u.dim() > 1:
            row.lerp_(torch.norm(u, dim=-1, keepdim=True).square_().div_(u.size(-1)), one_minus_beta2)
            col.lerp_(torch.norm(u, dim=-2, keepdim=True).square_().div_(u.size(-2)), one_minus_beta2)
            est = (row @ col).div_(row.mean(dim=-2, keepdim=True).clamp_(min=eps1))
        else:
            var.lerp_(u * u, one_minus_beta2)
            est = var.clone()
        out = est.clamp_(min=eps1 * eps1).rsqrt_().mul_(u)
        denom = max(1.0, out.norm(2).item() / ((out.numel() ** 0.5) * self.option(group, "d")))
        # torch steps by alpha / denom; scale_by_lr multiplies by lr afterwards.
        return (out.mul_(alpha / denom / lr) if lr else out.zero_()), state


def scale_by_adafactor(
    lr: float = 1e-2,
    beta2_decay: float = -0.8,
    eps: tuple[float | None, float] = (None, 1e-3),
    d: float = 1.0,
    *,
    mask: Mask = None,
) -> ScaleByAdafactor:
    """Adafactor's direction (Shazeer & Stern 2018), as ``torch.optim.Adafactor``.

    A matrix ``(..., n, m)`` keeps row and column means of ``u^2`` (``R``, ``C``),
    averaged with ``1 - beta2_t = t^beta2_decay``; the second moment is
    ``V = R C / mean(R)`` (a vector keeps ``V`` itself). The step is
    ``alpha_t / max(1, RMS(U) / d) * U`` with ``U = u / sqrt(max(V, eps1^2))``,
    ``alpha_t = max(eps2, RMS(w)) * min(lr, 1/sqrt(t))``; this transform returns
    it divided by ``lr`` (``scale_by_lr`` follows). ``eps1=None`` is the
    dtype's machine epsilon. Group options: ``lr``, ``beta2_decay``, ``eps``, ``d``.

    Example:
        >>> t = scale_by_adafactor(1e-2, d=1.5)
    """
    owner = "adafactor"
    if not isinstance(eps, (tuple, list)) or len(eps) != 2:
        raise ConfigError(f"{owner}: eps must be a pair (eps1 or None, eps2); got {eps!r}")
    eps1 = None if eps[0] is None else check.number(owner, "eps[0]", eps[0])
    beta2_decay = check.number(owner, "beta2_decay", beta2_decay, -math.inf)
    if beta2_decay > 0:
        raise ConfigError(f"{owner}: beta2_decay must be <= 0; got {beta2_decay!r}")
    return ScaleByAdafactor(check.lr(owner, lr), beta2_decay, (eps1, check.number(owner, "eps[1]", eps[1])),
                            check.number(owner, "d", d, 1.0), check_mask(mask))


class MuonState(NamedTuple):
    """Muon's momentum under torch's key."""

    momentum_buffer: Tensor


def newton_schulz(g: Tensor, coefficients: tuple[float, float, float], steps: int, eps: float) -> Tensor:
    """The quintic Newton-Schulz iteration toward ``U V^T`` of ``g = U S V^T``, in bfloat16.

    ``X <- a X + (b A + c A^2) X`` with ``A = X X^T``, starting from
    ``g / ||g||_F`` (Jordan et al. 2024; torch's ``Muon`` and its coefficients).
    The singular values end near, not at, 1 (roughly in [0.7, 1.2]).
    """
    a, b, c = coefficients
    x = g.bfloat16()
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    x.div_(x.norm().clamp(min=eps))
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


@dataclass(frozen=True, repr=False)
class ScaleByMuon(Transform):
    """Muon's orthogonalized momentum; see ``scale_by_muon``."""

    momentum: float = 0.95
    nesterov: bool = True
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315)
    eps: float = 1e-7
    ns_steps: int = 5
    adjust_lr_fn: str | None = None
    mask: Mask = None
    State = MuonState
    hyper = ("momentum", "nesterov", "ns_coefficients", "eps", "ns_steps", "adjust_lr_fn")

    def init(self, param: Tensor) -> MuonState:
        return MuonState(torch.zeros_like(param, memory_format=torch.preserve_format))

    def update(self, u: Tensor, state: MuonState, param: Tensor, group: Group) -> tuple[Tensor, MuonState]:
        if u.dim() != 2:
            raise ValueError(f"muon: parameters must be 2-D matrices; got shape {tuple(u.shape)}")
        o, state = self._orthogonal(u, state, group)
        return o.to(param.dtype).mul_(self.ratio(param, group)), state

    def _orthogonal(self, u: Tensor, state: MuonState, group: Group) -> tuple[Tensor, MuonState]:
        mu = self.option(group, "momentum")
        buf = state.momentum_buffer
        buf.lerp_(u, 1 - mu)
        d = u.lerp(buf, mu) if self.option(group, "nesterov") else buf
        return newton_schulz(d, self.option(group, "ns_coefficients"), self.option(group, "ns_steps"),
                             self.option(group, "eps")), state

    def ratio(self, param: Tensor, group: Group) -> float:
        """The shape factor that gives every matrix the same update RMS."""
        a, b = param.shape[:2]
        fn = self.option(group, "adjust_lr_fn")
        if fn == "match_rms_adamw":
            return 0.2 * math.sqrt(max(a, b))
        return math.sqrt(max(1, a / b))


@dataclass(frozen=True, repr=False)
class MuonStep(ScaleByMuon):
    """Muon's whole step with decoupled decay, in torch's arithmetic; see ``muon_step``."""

    lr: float = 1e-3
    weight_decay: float = 0.1
    hyper = ScaleByMuon.hyper + ("lr", "weight_decay")
    moves_param = True

    def update(self, u: Tensor, state: MuonState, param: Tensor, group: Group) -> tuple[None, MuonState]:
        o, state = self._orthogonal(u, state, group)
        lr, wd = self.option(group, "lr"), self.option(group, "weight_decay")
        # torch's order and scalar types (a Tensor lr stays a Tensor): the
        # bfloat16 iteration turns any round-off difference in w into a
        # visible one, so the step is w (1 - lr wd) - lr r O exactly as torch's.
        param.mul_(1 - lr * wd).add_(o, alpha=-(lr * self.ratio(param, group)))
        return None, state


def scale_by_muon(
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
    *,
    mask: Mask = None,
) -> ScaleByMuon:
    """Muon's direction (Jordan et al. 2024), as ``torch.optim.Muon``, for 2-D weights.

    ``B <- lerp(B, u, 1 - momentum)``; with ``nesterov`` ``D = lerp(u, B, momentum)``,
    else ``D = B``; ``u <- r * NS(D)``, the Newton-Schulz orthogonalization,
    with ``r = sqrt(max(1, rows/cols))`` (``adjust_lr_fn="original"``, Jordan) or
    ``0.2 sqrt(max(rows, cols))`` (``"match_rms_adamw"``, Liu et al. 2025).
    Group options: all arguments but ``mask``.

    Example:
        >>> t = scale_by_muon(momentum=0.9, ns_steps=6)
    """
    return ScaleByMuon(*_muon_args(momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn),
                       check_mask(mask))


def muon_step(
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
) -> MuonStep:
    """Muon's whole step ``w <- w (1 - lr wd) - lr r NS(D)`` in place, as ``torch.optim.Muon`` computes it.

    ``scale_by_muon`` is the composable direction; this transform makes the
    whole step in torch's order of operations, because the bfloat16
    Newton-Schulz iteration amplifies any round-off difference in the weights
    into a visible one. Group options: all arguments.

    Example:
        >>> t = muon_step(0.02, weight_decay=0.0)
    """
    args = _muon_args(momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn)
    return MuonStep(*args, None, check.lr("muon", lr), check.number("muon", "weight_decay", weight_decay))


def _muon_args(momentum: float, nesterov: bool, ns_coefficients: tuple[float, float, float], eps: float,
               ns_steps: int, adjust_lr_fn: str | None) -> tuple:
    owner = "muon"
    if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
        raise ConfigError(f"{owner}: adjust_lr_fn must be None, 'original' or 'match_rms_adamw'; "
                          f"got {adjust_lr_fn!r}")
    if not isinstance(ns_coefficients, (tuple, list)) or len(ns_coefficients) != 3:
        raise ConfigError(f"{owner}: ns_coefficients must be three numbers (a, b, c); got {ns_coefficients!r}")
    coeffs = tuple(check.number(owner, f"ns_coefficients[{i}]", c, -math.inf)
                   for i, c in enumerate(ns_coefficients))
    if isinstance(ns_steps, bool) or not isinstance(ns_steps, int) or not 0 <= ns_steps < 100:
        raise ConfigError(f"{owner}: ns_steps must be an integer in [0, 100); got {ns_steps!r}")
    return (check.number(owner, "momentum", momentum), check.flag(owner, "nesterov", nesterov),
            coeffs, check.number(owner, "eps", eps), ns_steps, adjust_lr_fn)
