"""The optimizers everyone knows, each one line of ``chain``.

Arguments and defaults are torch.optim's, and so are the trajectories (to
float32 round-off). Three arguments are added to every alias:

* ``decoupled``: ``False`` puts ``weight_decay`` on the gradient (coupled L2,
  ``add_l2``), ``True`` after the preconditioner (``add_decayed_weights``):
  ``w <- w - lr * P(g) - lr * weight_decay * w``. ``adam(decoupled=True)`` is
  ``adamw``; ``sgd(decoupled=True)`` is SGDW.
* ``decay_mask``: parameters that decay; ``"auto"`` (default) skips biases
  and norm weights, ``"all"`` decays everything as torch.optim does.
* ``prox``: a penalty (``gradwise.regularization.L1(lam)``, ...) whose exact
  proximal step, with step size ``lr``, follows every gradient step.

As in torch.optim, ``maximize=True`` ascends the objective (the gradient is
negated first), ``lr`` may be a one-element Tensor, and a complex parameter is
treated as its real view (``torch.view_as_real``): real and imaginary parts
are two independent coordinates. ``foreach`` is accepted for compatibility
and ignored: gradwise chooses its own path (see ``_dispatch``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from gradwise.errors import ConfigError, unknown
from gradwise.optim import _alias_modern, _alias_torch
from gradwise.optim import _validate as check
from gradwise.optim._assemble import Params
from gradwise.optim._assemble import assemble as _assemble
from gradwise.optim._optimizer import Optimizer
from gradwise.optim._transforms import (
    scale_by_adagrad,
    scale_by_adam,
    scale_by_momentum,
    scale_by_rms,
)
from gradwise.regularization import Mask, Penalty, penalty


def sgd(
    params: Params,
    lr: float = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    *,
    decoupled: bool = False,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Optimizer:
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    ``b <- momentum * b + (1 - dampening) * g`` (``b = g`` at first), then
    ``w <- w - lr * b`` (Nesterov: ``w <- w - lr * (g + momentum * b)``,
    Sutskever et al. 2013). Coupled decay uses ``g + weight_decay * w``;
    ``decoupled=True`` is SGDW (Loshchilov & Hutter 2019) in torch's AdamW
    convention, ``w <- w - lr * b - lr * weight_decay * w``. With ``prox`` it
    is proximal gradient descent (ISTA): ``w <- prox_{lr P}(w - lr * g)``.

    Example:
        >>> import torch
        >>> from gradwise.regularization import L1
        >>> opt = sgd(torch.nn.Linear(4, 1).parameters(), lr=0.1, momentum=0.9, prox=L1(1e-3))
    """
    owner = "sgd"
    momentum = check.number(owner, "momentum", momentum)
    dampening = check.number(owner, "dampening", dampening, 0.0, 1.0)
    nesterov = check.flag(owner, "nesterov", nesterov)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ConfigError(f"{owner}: nesterov needs momentum > 0 and dampening = 0; "
                          f"got momentum={momentum}, dampening={dampening}")
    core = [scale_by_momentum(momentum, dampening, nesterov)]
    return _assemble(owner, params, core, lr, weight_decay, decoupled, decay_mask, prox, fused, maximize)


def adam(
    params: Params,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    *,
    decoupled: bool = False,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Optimizer:
    """Adam (Kingma & Ba 2015), as ``torch.optim.Adam``; ``decoupled=True`` is AdamW.

    ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``,
    ``w <- w - lr * m_hat / (sqrt(v_hat) + eps)`` with bias-corrected
    ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)`` (AMSGrad: the
    running max of ``v``). Coupled decay puts ``weight_decay * w`` into ``g``,
    where it is divided by ``sqrt(v_hat)``; decoupled decay subtracts
    ``lr * weight_decay * w`` directly (Loshchilov & Hutter 2019).

    Example:
        >>> import torch
        >>> opt = adam(torch.nn.Linear(4, 1).parameters(), lr=1e-3, weight_decay=1e-2, decoupled=True)
    """
    core = [scale_by_adam(check.betas("adam", betas), eps, check.flag("adam", "amsgrad", amsgrad))]
    return _assemble("adam", params, core, lr, weight_decay, decoupled, decay_mask, prox, fused, maximize)


def adamw(
    params: Params,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    decoupled: bool = True,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Optimizer:
    """AdamW (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``: ``adam(decoupled=True)``.

    ``w <- w - lr * m_hat / (sqrt(v_hat) + eps) - lr * weight_decay * w``.
    Unlike torch's AdamW, biases and norm weights do not decay unless
    ``decay_mask="all"``.

    Example:
        >>> import torch
        >>> opt = adamw(torch.nn.Linear(4, 1).named_parameters(), lr=3e-4, weight_decay=0.1)
    """
    return adam(params, lr, betas, eps, weight_decay, amsgrad, decoupled=decoupled,
                decay_mask=decay_mask, prox=prox, maximize=maximize, foreach=foreach, fused=fused)


def rmsprop(
    params: Params,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    *,
    decoupled: bool = False,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
) -> Optimizer:
    """RMSprop (Hinton, lecture 6e), as ``torch.optim.RMSprop``.

    ``s <- alpha s + (1-alpha) g^2``, ``w <- w - lr * g / (sqrt(s) + eps)``;
    ``centered`` divides by ``sqrt(s - gbar^2) + eps`` (Graves 2013); with
    ``momentum``: ``b <- momentum b + g / (sqrt(s) + eps)``, ``w <- w - lr b``.

    Example:
        >>> import torch
        >>> opt = rmsprop(torch.nn.Linear(4, 1).parameters(), lr=1e-3, centered=True)
    """
    owner = "rmsprop"
    core = [scale_by_rms(alpha, eps, centered), scale_by_momentum(check.number(owner, "momentum", momentum))]
    return _assemble(owner, params, core, lr, weight_decay, decoupled, decay_mask, prox, False, maximize,
                     foreach=foreach)


def adagrad(
    params: Params,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    decoupled: bool = False,
    decay_mask: Mask = "auto",
    prox: Penalty | None = None,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> Optimizer:
    """Adagrad (Duchi, Hazan & Singer 2011), as ``torch.optim.Adagrad``; ``fused`` as ``sgd``'s.

    ``G <- G + g^2``, ``w <- w - lr / (1 + (t-1) lr_decay) * g / (sqrt(G) + eps)``.
    Decoupled decay is ``lr * weight_decay * w`` (not scaled by ``lr_decay``).

    Example:
        >>> import torch
        >>> opt = adagrad(torch.nn.Linear(4, 1).parameters(), lr=0.1)
    """
    core = [scale_by_adagrad(lr_decay, eps, initial_accumulator_value)]
    return _assemble("adagrad", params, core, lr, weight_decay, decoupled, decay_mask, prox, fused, maximize)


ALIASES = {"sgd": sgd, "adam": adam, "adamw": adamw, "rmsprop": rmsprop, "adagrad": adagrad,
           **_alias_torch.ALIASES, **_alias_modern.ALIASES}


def build(params: Params, name: str, **hyper: Any) -> Optimizer:
    """Build an optimizer from a config entry: ``build(params, "adamw", lr=3e-4, ...)``.

    ``name`` is a key of ``ALIASES``; ``hyper`` holds that alias's keyword
    arguments, read from its signature (``prox`` may also be a mapping
    ``{kind, lam, alpha}``).
    Options the optimizer does not have and bad values raise ``ConfigError``
    naming the field.

    Example:
        >>> import torch
        >>> opt = build(torch.nn.Linear(3, 1).parameters(), "sgd", lr=0.1, momentum=0.9,
        ...             prox={"kind": "elastic_net", "lam": 1e-3, "alpha": 0.5})
    """
    if not isinstance(name, str) or name not in ALIASES:
        raise unknown("optimizer", str(name), ALIASES)
    # the alias's signature is the one list of its options
    allowed = tuple(inspect.signature(ALIASES[name]).parameters)[1:]
    for key in hyper:
        if key not in allowed:
            raise ConfigError(
                f"optimizer {name!r} has no option {key!r}; allowed: {', '.join(allowed)}"
            )
    pen = hyper.get("prox")
    if isinstance(pen, Mapping):
        extra = set(pen) - {"kind", "lam", "alpha"}
        if "kind" not in pen or "lam" not in pen or extra:
            raise ConfigError(
                f"optimizer {name!r}: prox needs kind and lam (and alpha for elastic_net); got {dict(pen)!r}"
            )
        hyper["prox"] = penalty(pen["kind"], pen["lam"], pen.get("alpha"))
    if "betas" in hyper and isinstance(hyper["betas"], list):
        hyper["betas"] = tuple(hyper["betas"])
    return ALIASES[name](params, **hyper)
