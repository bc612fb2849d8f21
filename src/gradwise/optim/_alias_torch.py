"""The rest of torch.optim as aliases: nadam, radam, adamax, adadelta, asgd, rprop,
adafactor, muon, sparse_adam (lbfgs, closure-based, is ``gradwise.optim.LBFGS``).

Arguments, defaults and trajectories are torch.optim's (checked on every
configuration of torch's own ``optim_db``). Each alias also takes the common
gradwise arguments: ``decoupled`` and ``decay_mask`` for ``weight_decay``,
``prox`` (a penalty's exact proximal step after each step), ``maximize`` and
``foreach`` as torch does: nadam, radam, adamax, adadelta (and rmsprop) run on
torch's multi-tensor functional form unless ``foreach=False`` (the per-tensor
reference path); the others accept it and ignore it. Complex parameters are
run as their real view, as torch runs them.
"""

from __future__ import annotations

from gradwise.errors import ConfigError
from gradwise.optim import _validate as check
from gradwise.optim._adaptive import (
    scale_by_adadelta,
    scale_by_adamax,
    scale_by_nadam,
    scale_by_radam,
)
from gradwise.optim._assemble import Params, assemble
from gradwise.optim._base import chain
from gradwise.optim._decay import prox as prox_transform
from gradwise.optim._lbfgs import lbfgs
from gradwise.optim._matrix import muon_step, scale_by_adafactor
from gradwise.optim._optimizer import Optimizer
from gradwise.optim._signed import asgd_step, rprop_step
from gradwise.optim._sparse import scale_by_sparse_adam
from gradwise.optim._transforms import scale_by_lr
from gradwise.regularization import Mask, Penalty


def _decoupled(owner: str, decoupled: bool | None, decoupled_weight_decay: bool) -> bool:
    # torch's name is decoupled_weight_decay, gradwise's is decoupled; either may be given.
    flag = check.flag(owner, "decoupled_weight_decay", decoupled_weight_decay)
    if decoupled is None:
        return flag
    if check.flag(owner, "decoupled", decoupled) != flag and decoupled_weight_decay:
        raise ConfigError(f"{owner}: decoupled={decoupled} contradicts decoupled_weight_decay=True")
    return decoupled


def nadam(
    params: Params,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    decoupled: bool | None = None,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
) -> Optimizer:
    """NAdam (Dozat 2016), as ``torch.optim.NAdam``; ``decoupled_weight_decay`` is NAdamW.

    Adam with Nesterov momentum under the schedule
    ``mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay))``:
    ``w <- w - lr * [(1-mu_t)/(1-P_t) g + mu_{t+1}/(1-P_{t+1}) m] / (sqrt(v_hat) + eps)``
    with ``P_t = mu_1 ... mu_t``. ``decoupled`` is gradwise's name for
    ``decoupled_weight_decay``.

    Example:
        >>> import torch
        >>> opt = nadam(torch.nn.Linear(4, 1).parameters(), lr=2e-3, weight_decay=0.01,
        ...             decoupled_weight_decay=True)
    """
    dec = _decoupled("nadam", decoupled, decoupled_weight_decay)
    core = [scale_by_nadam(betas, eps, momentum_decay)]
    return assemble("nadam", params, core, lr, weight_decay, dec, decay_mask, prox, False, maximize,
                    decoupled_weight_decay=dec, foreach=foreach)


def radam(
    params: Params,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    decoupled: bool | None = None,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
) -> Optimizer:
    """RAdam (Liu et al. 2020), as ``torch.optim.RAdam``.

    Momentum SGD on ``m_hat`` while the variance estimate is not tractable
    (``rho_t <= 5``), then Adam's step times the rectifier ``r_t``; see
    ``scale_by_radam``. ``decoupled`` is gradwise's name for
    ``decoupled_weight_decay`` (RAdamW).

    Example:
        >>> import torch
        >>> opt = radam(torch.nn.Linear(4, 1).parameters(), lr=1e-3)
    """
    dec = _decoupled("radam", decoupled, decoupled_weight_decay)
    core = [scale_by_radam(betas, eps)]
    return assemble("radam", params, core, lr, weight_decay, dec, decay_mask, prox, False, maximize,
                    decoupled_weight_decay=dec, foreach=foreach)


def adamax(
    params: Params,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    *,
    decoupled: bool = False,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
) -> Optimizer:
    """Adamax (Kingma & Ba 2015, section 7), as ``torch.optim.Adamax``.

    ``m <- b1 m + (1-b1) g``, ``n <- max(b2 n, |g| + eps)``,
    ``w <- w - lr / (1 - b1^t) * m / n``.

    Example:
        >>> import torch
        >>> opt = adamax(torch.nn.Linear(4, 1).parameters(), lr=2e-3)
    """
    core = [scale_by_adamax(betas, eps)]
    return assemble("adamax", params, core, lr, weight_decay, decoupled, decay_mask, prox, False, maximize,
                    foreach=foreach)


def adadelta(
    params: Params,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    *,
    decoupled: bool = False,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
) -> Optimizer:
    """Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``.

    ``s <- rho s + (1-rho) g^2``, ``d = sqrt(a + eps) / sqrt(s + eps) * g``,
    ``a <- rho a + (1-rho) d^2``, ``w <- w - lr * d``.

    Example:
        >>> import torch
        >>> opt = adadelta(torch.nn.Linear(4, 1).parameters(), rho=0.95)
    """
    core = [scale_by_adadelta(rho, eps)]
    return assemble("adadelta", params, core, lr, weight_decay, decoupled, decay_mask, prox, False, maximize,
                    foreach=foreach)


def asgd(
    params: Params,
    lr: float = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0.0,
    *,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
) -> Optimizer:
    """Averaged SGD (Polyak & Juditsky 1992), as ``torch.optim.ASGD``.

    ``w <- w (1 - lambd eta_t) - eta_t g``, ``eta_t = lr / (1 + lambd lr t)^alpha``;
    the running average ``ax`` (from step ``t0`` on) is in
    ``optimizer.state[p]["ax"]``. Weight decay is coupled (on ``g``).

    Example:
        >>> import torch
        >>> opt = asgd(torch.nn.Linear(4, 1).parameters(), lr=0.01, t0=100)
    """
    core = [asgd_step(lr, lambd, alpha, t0)]
    return assemble("asgd", params, core, lr, weight_decay, False, decay_mask, prox, False, maximize,
                    signed=True)


def rprop(
    params: Params,
    lr: float = 1e-2,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50.0),
    *,
    weight_decay: float = 0.0,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
) -> Optimizer:
    """Rprop (Riedmiller & Braun 1993), as ``torch.optim.Rprop``: full-batch sign steps.

    Per coordinate, the step size grows by ``etas[1]`` while the gradient keeps
    its sign and shrinks by ``etas[0]`` when it flips, within ``step_sizes``;
    ``lr`` is the initial step size. ``weight_decay`` (coupled, default 0) is
    a gradwise addition.

    Example:
        >>> import torch
        >>> opt = rprop(torch.nn.Linear(4, 1).parameters(), lr=1e-2)
    """
    core = [rprop_step(lr, etas, step_sizes)]
    return assemble("rprop", params, core, lr, weight_decay, False, decay_mask, prox, False, maximize,
                    signed=True)


def adafactor(
    params: Params,
    lr: float = 1e-2,
    beta2_decay: float = -0.8,
    eps: tuple[float | None, float] = (None, 1e-3),
    d: float = 1.0,
    weight_decay: float = 0.0,
    *,
    decoupled: bool = True,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
) -> Optimizer:
    """Adafactor (Shazeer & Stern 2018), as ``torch.optim.Adafactor``.

    Factored second moments for matrices (row and column means), a relative
    step ``max(eps2, RMS(w)) * min(lr, 1/sqrt(t))`` and update clipping at
    RMS ``d``; no first moment. See ``scale_by_adafactor``. Weight decay is
    decoupled as in torch: ``w <- w - lr * weight_decay * w``.

    Example:
        >>> import torch
        >>> opt = adafactor(torch.nn.Linear(4, 2).parameters(), lr=1e-2)
    """
    core = [scale_by_adafactor(lr, beta2_decay, eps, d)]
    opt = assemble("adafactor", params, core, lr, weight_decay, decoupled, decay_mask, prox, False,
                   maximize)
    return _real_only(opt, "adafactor")


def muon(
    params: Params,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
    *,
    prox: Penalty | None = None,
    maximize: bool = False,
) -> Optimizer:
    """Muon (Jordan et al. 2024), as ``torch.optim.Muon``: orthogonalized momentum for 2-D weights.

    ``B <- lerp(B, g, 1 - momentum)``, ``O = NS(lerp(g, B, momentum))`` (Nesterov)
    by 5 Newton-Schulz steps in bfloat16, ``w <- w - lr * wd * w - lr * r * O`` with
    ``r = sqrt(max(1, rows/cols))``. Every parameter must be a matrix; give
    biases, norms and embeddings to another optimizer (its own param group
    cannot share one Optimizer with a different chain). As in torch, every
    matrix decays (no ``decay_mask``); ``scale_by_muon`` is the composable
    direction for chains of your own. ``maximize`` is a gradwise addition.

    Example:
        >>> import torch
        >>> opt = muon([torch.nn.Linear(4, 8, bias=False).weight], lr=0.02)
    """
    owner = "muon"
    parts = [muon_step(lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn)]
    if prox is not None:
        parts.append(prox_transform(prox))
    opt = Optimizer(params, chain(*parts), fused=False, maximize=check.flag(owner, "maximize", maximize))
    for group in opt.param_groups:
        for p in group["params"]:
            if p.ndim != 2:
                raise ConfigError(f"muon: every parameter must be 2-D (a weight matrix); got shape "
                                  f"{tuple(p.shape)}; put biases and norms in another optimizer")
    return _real_only(opt, owner)


def sparse_adam(
    params: Params,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    *,
    prox: Penalty | None = None,
    maximize: bool = False,
) -> Optimizer:
    """SparseAdam, as ``torch.optim.SparseAdam``: Adam on the entries of sparse gradients.

    For ``nn.Embedding(sparse=True)``: only the rows in the gradient update
    their moments and weights (``scale_by_sparse_adam``). Dense gradients are
    refused, as torch refuses them.

    Example:
        >>> import torch
        >>> emb = torch.nn.Embedding(10, 3, sparse=True)
        >>> opt = sparse_adam(emb.parameters(), lr=1e-2)
    """
    owner = "sparse_adam"
    parts = [scale_by_sparse_adam(betas, eps), scale_by_lr(check.lr(owner, lr))]
    if prox is not None:
        parts.append(prox_transform(prox))
    opt = Optimizer(params, chain(*parts), fused=False, maximize=check.flag(owner, "maximize", maximize))
    return _real_only(opt, owner)


def _real_only(opt: Optimizer, owner: str) -> Optimizer:
    # As torch: these algorithms are defined on real tensors only.
    for group in opt.param_groups:
        for p in group["params"]:
            if p.is_complex():
                raise ConfigError(f"{owner}: complex parameters are not supported (shape "
                                  f"{tuple(p.shape)}, {p.dtype}), as in torch.optim")
    return opt


ALIASES = {"nadam": nadam, "radam": radam, "adamax": adamax, "adadelta": adadelta, "asgd": asgd,
           "rprop": rprop, "adafactor": adafactor, "muon": muon, "sparse_adam": sparse_adam, "lbfgs": lbfgs}
