"""torch's multi-tensor kernels for the chains that are exactly a torch.optim algorithm.

When a chain is one of

    [add_l2] scale_by_rms [scale_by_momentum]  scale_by_lr [prox]   (RMSprop)
    [add_l2] scale_by_adamax                   scale_by_lr [prox]   (Adamax)
    [add_l2] scale_by_adadelta                 scale_by_lr [prox]   (Adadelta)
    [add_l2] scale_by_nadam [add_decayed_weights] scale_by_lr [prox] (NAdam)
    [add_l2] scale_by_radam [add_decayed_weights] scale_by_lr [prox] (RAdam)

a group's step is one call of the algorithm's public functional form
(``torch.optim.adamax.adamax`` and so on), on the same state tensors under
the same keys: its multi-tensor (foreach) form on CUDA and for small tensors
on CPU, where one kernel per pass over all of the group's parameters beats a
launch per parameter, else its per-tensor form, whose in-place passes beat
the foreach form's temporaries on large CPU tensors. It is what keeps these
aliases at torch's speed (benchmarks/bench_optim.py). tests/optim/test_delegate.py checks every
one against torch and against the reference path. ASGD is not delegated:
torch's foreach ASGD keeps ``eta`` in float32 and so departs from its own
for-loop form (by 1e-8 in float64), which gradwise follows
(``gradwise.optim._group`` steps it a group at a time).

``run`` returns False, before changing anything, whenever the tensors or
options do not fit (a masked transform with a non-zero decay, sparse or
complex gradients, mixed devices or dtypes, a Tensor ``lr``, momentum with
dampening or Nesterov in RMSprop); the optimizer then takes the reference path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from gradwise.optim._adaptive import ScaleByAdadelta, ScaleByAdamax, ScaleByNadam, ScaleByRadam
from gradwise.optim._decay import AddDecayedWeights, AddL2, prox_runner
from gradwise.optim._transforms import ScaleByLr, ScaleByMomentum, ScaleByRms

if TYPE_CHECKING:
    from gradwise.optim._base import Group, Transform
    from gradwise.optim._optimizer import Optimizer, ParamPlan

_CORES = {
    ScaleByRms: "rmsprop",
    ScaleByAdamax: "adamax",
    ScaleByAdadelta: "adadelta",
    ScaleByNadam: "nadam",
    ScaleByRadam: "radam",
}


_FOREACH_NUMEL = 32768  # mean elements per tensor below which CPU steps use torch's foreach form


class DelegatePlan(NamedTuple):
    """Which torch algorithm a chain is, and where its pieces sit (indices into the leaves)."""

    algo: str
    core: int
    decay: int | None  # AddL2 or AddDecayedWeights
    decoupled: bool
    momentum: int | None  # RMSprop's ScaleByMomentum


def _unmasked(t: Transform) -> bool:
    return getattr(t, "mask", None) in (None, "all")


def match(leaves: tuple[Transform, ...]) -> DelegatePlan | None:
    """The ``DelegatePlan`` of ``leaves`` if a torch functional computes exactly that chain."""
    body = list(leaves[:-1] if leaves and leaves[-1].post_step else leaves)
    n, i = len(body), 0
    decay = momentum = None
    decoupled = False
    if i < n and isinstance(body[i], AddL2):
        decay, i = i, i + 1
    if i >= n or type(body[i]) not in _CORES or not _unmasked(body[i]):
        return None
    core, algo = i, _CORES[type(body[i])]
    i += 1
    if algo == "rmsprop" and i < n and isinstance(body[i], ScaleByMomentum) and _unmasked(body[i]):
        momentum, i = i, i + 1
    if algo in ("nadam", "radam") and i < n and isinstance(body[i], AddDecayedWeights) and decay is None:
        decay, decoupled, i = i, True, i + 1
    if i != n - 1 or not isinstance(body[i], ScaleByLr) or not _unmasked(body[i]):
        return None
    return DelegatePlan(algo, core, decay, decoupled, momentum)


def _functional(algo: str) -> Any:
    # torch.optim.<algo>.<algo>: each module's __all__ lists it (torch/optim/adamax.py ...).
    return getattr(importlib.import_module(f"torch.optim.{algo}"), algo)


class DelegateCache(NamedTuple):
    """What one group's delegated step needs, built once and reused while valid.

    Valid while the group, its parameters with gradients and the options that
    shape the state (RMSprop's momentum on/off and centered) stay the same;
    the optimizer drops it when the reference path or ``load_state_dict``
    touches the state, as it drops the fused path's cache.
    """

    group: Group
    key: tuple
    params: list[torch.Tensor]
    lists: list[list[torch.Tensor]]  # the functional's state lists, in its order
    f: Any  # torch.optim.<algo>.<algo>
    foreach: bool
    prox: Callable[[float], None] | None


def run(opt: Optimizer, plan: DelegatePlan, group: Group, plans: list[ParamPlan]) -> bool:
    """Do ``group``'s step with torch's functional form; False (nothing done) if it cannot."""
    lr = group["lr"]
    if isinstance(lr, torch.Tensor):
        return False
    wd = float(group.get("weight_decay", 0.0)) if plan.decay is not None else 0.0
    mom = float(group["momentum"]) if plan.momentum is not None else 0.0
    if plan.momentum is not None and mom and (group.get("dampening", 0.0) or group.get("nesterov", False)):
        return False
    params, grads = [], []
    for p in group["params"]:
        g = p.grad
        if g is not None:
            params.append(p)
            grads.append(g)
    if not params:
        return True
    if wd and not _unmasked(opt.leaves[plan.decay]):  # type: ignore[index]
        return False
    key = (bool(mom), bool(group.get("centered", False)))
    cache = opt._fast_cache.get(id(group))
    if (
        cache is None
        or cache.group is not group
        or cache.key != key
        or len(cache.params) != len(params)
        or any(a is not b for a, b in zip(cache.params, params))
    ):
        cache = _build(opt, plan, group, plans, params, key)
        if cache is None:
            return False
        opt._fast_cache[id(group)] = cache
    dtype, device = params[0].dtype, params[0].device
    for g in grads:
        if g.dtype is not dtype or g.is_sparse or g.device != device:
            return False
    flags = {"foreach": cache.foreach, "maximize": bool(group.get("maximize", False)), "has_complex": False}
    f, lists = cache.f, cache.lists
    if plan.algo == "rmsprop":
        f(params, grads, *lists, lr=lr, alpha=group["alpha"], eps=group["eps"], weight_decay=wd,
          momentum=mom, centered=key[1], **flags)
    elif plan.algo == "adamax":
        b1, b2 = group["betas"]
        f(params, grads, *lists, eps=group["eps"], beta1=b1, beta2=b2, lr=lr, weight_decay=wd, **flags)
    elif plan.algo == "adadelta":
        f(params, grads, *lists, lr=lr, rho=group["rho"], eps=group["eps"], weight_decay=wd, **flags)
    elif plan.algo == "nadam":
        b1, b2 = group["betas"]
        f(params, grads, *lists, decoupled_weight_decay=plan.decoupled, beta1=b1, beta2=b2, lr=lr,
          weight_decay=wd, momentum_decay=group["momentum_decay"], eps=group["eps"], **flags)
    elif plan.algo == "radam":
        b1, b2 = group["betas"]
        f(params, grads, *lists, decoupled_weight_decay=plan.decoupled, beta1=b1, beta2=b2, lr=lr,
          weight_decay=wd, eps=group["eps"], **flags)
    if cache.prox is not None:
        cache.prox(lr)
    return True


def _build(opt: Optimizer, plan: DelegatePlan, group: Group, plans: list[ParamPlan],
           params: list[torch.Tensor], key: tuple) -> DelegateCache | None:
    p0 = params[0]
    dtype, device = p0.dtype, p0.device
    if not dtype.is_floating_point or not (p0.is_cpu or p0.is_cuda):
        return None
    if any(p.dtype is not dtype or p.device != device for p in params):
        return None
    with_grad = {id(p) for p in params}
    picked = [pl for p, pl in zip(group["params"], plans) if id(p) in with_grad]
    state = opt.state
    for p, pl in zip(params, picked):
        if not state[p]:
            opt.init_state(p, pl, state[p])
    keys = opt._keys[plan.core]
    col = {k: [state[p].get(k) for p in params] for k in keys}
    if plan.algo == "rmsprop":
        bufs: list[torch.Tensor] = []
        if key[0]:
            (k_buf,) = opt._keys[plan.momentum]  # type: ignore[index]
            for p in params:
                if state[p].get(k_buf) is None:  # torch starts from zeros; equal to a first copy
                    state[p][k_buf] = torch.zeros_like(p, memory_format=torch.preserve_format)
            bufs = [state[p][k_buf] for p in params]
        if key[1] and any(a is None for a in col["grad_avg"]):
            return None
        lists = [col["square_avg"], col["grad_avg"] if key[1] else [], bufs, col["step"]]
    elif plan.algo == "adamax":
        lists = [col["exp_avg"], col["exp_inf"], col["step"]]
    elif plan.algo == "adadelta":
        lists = [col["square_avg"], col["acc_delta"], col["step"]]
    elif plan.algo == "nadam":
        lists = [col["exp_avg"], col["exp_avg_sq"], col["mu_product"], col["step"]]
    else:
        lists = [col["exp_avg"], col["exp_avg_sq"], col["step"]]
    # On CUDA torch's multi-tensor kernels win; on CPU they loop over the
    # tensors in C++ and allocate their intermediates, which pays for small
    # tensors only (benchmarks/bench_optim.py): there the per-tensor form runs.
    foreach = p0.is_cuda or sum(p.numel() for p in params) < _FOREACH_NUMEL * len(params)
    prox = None
    if opt.prox is not None:
        pairs = [(p, pl.factor) for p, pl in zip(params, picked) if pl.factor is not None]
        prox = prox_runner(opt.prox, [p for p, _ in pairs], [f for _, f in pairs])
    return DelegateCache(group, key, params, lists, _functional(plan.algo), foreach, prox)
