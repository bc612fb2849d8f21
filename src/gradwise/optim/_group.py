"""Group-level steps: Schedule-Free AdamW and SGD, ASGD, SparseAdam, Adafactor.

The reference path runs a chain parameter by parameter through the
transforms' ``update`` calls; for Schedule-Free that Python was a
measurable share of a step on tens of tensors (benchmarks/bench_optim.py).
When a chain is exactly

    [scale_by_second_moment] [add_decayed_weights] schedule_free [prox]
    [add_l2] asgd_step [prox]
    scale_by_sparse_adam scale_by_lr [prox]
    scale_by_adafactor add_decayed_weights scale_by_lr [prox]   (gradwise.optim._group_adafactor)

one group's step here computes the scalars (bias correction, the averaging
weight ``c``, the scheduled ``lr``) once, then runs the tensor ops over
the group's lists, cached while the group and its parameters with gradients
stay the same (as the fused and delegate paths cache theirs): on CUDA as
``torch._foreach_*`` ops, on CPU one tensor at a time while it is in cache
(there the multi-tensor ops pass over the whole group once per op and were
2-3x slower in bench_optim). The arithmetic is the reference path's
(``ScaleBySecondMoment``, ``AddDecayedWeights``, ``ScheduleFreeStep``); on
CPU without decay ``u = g / d`` is folded into the two updates
(``addcdiv_``), equal to round-off. The averaging bookkeeping (``sf_step``,
``weight_sum``, ``lr_max``) is written to every parameter's state, so a
state_dict is the reference path's. ASGD keeps torch's arithmetic and order
(equal to ``torch.optim.ASGD`` bit for bit), its ``step``, ``eta`` and ``mu``
as 0-dim views of one buffer each, advanced once per group. SparseAdam
updates an embedding gradient's rows with ``index_select`` / ``index_copy_`` /
``index_add_`` instead of building sparse tensors (equal to torch's
SparseAdam to round-off).

``run`` returns False, before changing anything, when the step does not fit:
a Tensor ``lr``, complex or sparse tensors, mixed dtypes or devices, a decay
mask that leaves some parameters out while ``weight_decay`` is on, or
parameters whose counters differ (one skipped steps; SparseAdam keeps one per
parameter), a sparse gradient that is not an embedding's rows; the reference path
then runs.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from gradwise.optim import _group_adafactor
from gradwise.optim._decay import AddDecayedWeights, AddL2, prox_runner

if TYPE_CHECKING:
    from gradwise.optim._base import Group, Transform
    from gradwise.optim._optimizer import Optimizer, ParamPlan


class GroupPlan(NamedTuple):
    """Where the pieces of a Schedule-Free or ASGD chain sit (indices into the leaves)."""

    second: int | None  # ScaleBySecondMoment (Schedule-Free AdamW); None otherwise
    decay: int | None  # AddDecayedWeights (Schedule-Free) or AddL2 (ASGD)
    sf: int  # ScheduleFreeStep, Asgd, ScaleBySparseAdam or ScaleByAdafactor
    algo: str = "schedule_free"  # or "asgd", "sparse_adam", "adafactor"


def _unmasked(t: Transform) -> bool:
    return getattr(t, "mask", None) in (None, "all")


def match(leaves: tuple[Transform, ...]) -> GroupPlan | None:
    """The ``GroupPlan`` of ``leaves`` if this module steps that chain."""
    from gradwise.optim._matrix import ScaleByAdafactor
    from gradwise.optim._schedule_free import ScaleBySecondMoment, ScheduleFreeStep
    from gradwise.optim._signed import Asgd
    from gradwise.optim._sparse import ScaleBySparseAdam
    from gradwise.optim._transforms import ScaleByLr

    body = list(leaves[:-1] if leaves and leaves[-1].post_step else leaves)
    n, i = len(body), 0
    if (n == 2 and type(body[0]) is ScaleBySparseAdam and type(body[1]) is ScaleByLr
            and _unmasked(body[0]) and _unmasked(body[1])):
        return GroupPlan(None, None, 0, "sparse_adam")
    if (n == 3 and type(body[0]) is ScaleByAdafactor and type(body[1]) is AddDecayedWeights
            and type(body[2]) is ScaleByLr and _unmasked(body[0]) and _unmasked(body[2])):
        return GroupPlan(None, 1, 0, "adafactor")
    if n == 2 and type(body[0]) is AddL2 and type(body[1]) is Asgd and _unmasked(body[1]):
        return GroupPlan(None, 0, 1, "asgd")
    second = decay = None
    if i < n and type(body[i]) is ScaleBySecondMoment and _unmasked(body[i]):
        second, i = i, i + 1
    if i < n and type(body[i]) is AddDecayedWeights:
        decay, i = i, i + 1
    if i != n - 1 or type(body[i]) is not ScheduleFreeStep or not _unmasked(body[i]):
        return None
    return GroupPlan(second, decay, i)


class GroupCache(NamedTuple):
    """One group's lists, built once and reused while valid (see the module docstring)."""

    group: Group
    params: list[torch.Tensor]
    states: list[dict[str, Any]]
    vs: list[torch.Tensor]  # second moments (Schedule-Free AdamW, SparseAdam)
    steps: torch.Tensor | None  # the second moment's step counters, one buffer (AdamW)
    zs: list[torch.Tensor]  # Schedule-Free's z, ASGD's average ax, SparseAdam's first moment
    foreach: bool  # multi-tensor ops (CUDA) or one tensor at a time (CPU)
    dtype: torch.dtype
    decay_all: bool  # the decay mask selects every parameter
    prox: Callable[[float], None] | None
    scalars: tuple[torch.Tensor, ...] = ()  # ASGD: eta and mu, one buffer each
    extra: Any = None  # Adafactor: row and column statistics, variances, decay on/off per parameter


def run(opt: Optimizer, plan: GroupPlan, group: Group, plans: list[ParamPlan]) -> bool:
    """Do ``group``'s step with multi-tensor ops; False (nothing done) if it cannot."""
    sf = opt.leaves[plan.sf]
    option = sf.option
    lr = option(group, "lr")
    if isinstance(lr, torch.Tensor):
        return False
    params = [p for p in group["params"] if p.grad is not None]
    if not params:
        return True
    grads = [p.grad for p in params]
    if plan.algo == "sparse_adam":
        return _sparse_adam(opt, plan, group, plans, params, grads, float(lr))
    wd = opt.leaves[plan.decay].option(group, "weight_decay") if plan.decay is not None else 0.0
    cache = _cached(opt, plan, group, plans, params)
    if cache is None:
        return False
    if wd and not cache.decay_all and plan.algo != "adafactor":
        return False
    # A gradient on another device makes the ops below raise, as on the reference path.
    dtype = cache.dtype
    for g in grads:
        if g.dtype is not dtype or g.is_sparse:
            return False
    if group.get("maximize", False):
        grads = list(torch._foreach_neg(grads))
    if plan.algo == "adafactor":
        if not lr:
            return False  # the reference path's zero step
        leaf = opt.leaves[plan.sf]
        _group_adafactor.step(cache, grads, float(lr), wd, *(leaf.option(group, k) for k in ("beta2_decay", "eps", "d")))
        if cache.prox is not None:
            cache.prox(group["lr"])
        return True
    if plan.algo == "asgd":
        _asgd(cache, grads, float(lr), wd, *(option(group, k) for k in ("lambd", "alpha", "t0")))
        if cache.prox is not None:
            cache.prox(group["lr"])
        return True
    # The averaging bookkeeping, once for the group (ScheduleFreeStep.update's).
    k_z, k_k, k_wsum, k_lrmax = opt._keys[plan.sf]
    d0 = cache.states[0]
    k, wsum, lr_max = d0[k_k], d0[k_wsum], d0[k_lrmax]
    warm = option(group, "warmup_steps")
    lr = float(lr) * ((k + 1) / warm if k < warm else 1.0)
    lr_max = max(lr, lr_max)
    weight = ((k + 1) ** option(group, "r")) * (lr_max ** option(group, "weight_lr_power"))
    wsum = wsum + weight
    ckp1 = weight / wsum if wsum else 0.0
    a = lr * (option(group, "momentum") * (1 - ckp1) - 1)
    if plan.second is None:
        _sgd(cache, grads, wd, ckp1, a, lr)
    else:
        second = opt.leaves[plan.second]
        b2 = second.option(group, "betas")[1]
        cache.steps.add_(1)  # type: ignore[union-attr]
        bc = 1 - b2 ** cache.steps[0].item()  # type: ignore[index]
        _adamw(cache, grads, b2, bc, second.option(group, "eps"), wd, ckp1, a, lr)
    k += 1
    for d in cache.states:
        d[k_k] = k
        d[k_wsum] = wsum
        d[k_lrmax] = lr_max
    if cache.prox is not None:
        cache.prox(group["lr"])
    return True


def _cached(opt: Optimizer, plan: GroupPlan, group: Group, plans: list[ParamPlan],
            params: list[torch.Tensor]) -> GroupCache | None:
    cache = opt._fast_cache.get(id(group))
    if (
        cache is None
        or cache.group is not group
        or len(cache.params) != len(params)
        or not all(map(operator.is_, cache.params, params))
    ):
        cache = _build(opt, plan, group, plans, params)
        if cache is not None:
            opt._fast_cache[id(group)] = cache
    return cache


def _sgd(cache: GroupCache, grads: list[torch.Tensor], wd: float, ckp1: float, a: float, lr: float) -> None:
    # y <- lerp(y, z, c) + a u, z <- z - lr u, u = g + wd y (AddDecayedWeights, ScheduleFreeStep).
    params, zs = cache.params, cache.zs
    if cache.foreach:
        u = torch._foreach_add(grads, params, alpha=wd) if wd else grads
        torch._foreach_lerp_(params, zs, ckp1)
        torch._foreach_add_(params, u, alpha=a)
        torch._foreach_sub_(zs, u, alpha=lr)
        return
    for y, g, z in zip(params, grads, zs):
        ui = g.add(y, alpha=wd) if wd else g
        y.lerp_(z, ckp1).add_(ui, alpha=a)
        z.sub_(ui, alpha=lr)


def _adamw(cache: GroupCache, grads: list[torch.Tensor], b2: float, bc: float, eps: float, wd: float,
           ckp1: float, a: float, lr: float) -> None:
    # v <- b2 v + (1-b2) g^2, u = g / (sqrt(v / bc) + eps) [+ wd y] (ScaleBySecondMoment,
    # AddDecayedWeights), then ScheduleFreeStep's y and z updates.
    params, vs, zs = cache.params, cache.vs, cache.zs
    if cache.foreach:
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
        u = torch._foreach_div(vs, bc)
        torch._foreach_sqrt_(u)
        torch._foreach_add_(u, eps)
        u = torch._foreach_div(grads, u)
        if wd:
            torch._foreach_add_(u, params, alpha=wd)
        torch._foreach_lerp_(params, zs, ckp1)
        torch._foreach_add_(params, u, alpha=a)
        torch._foreach_sub_(zs, u, alpha=lr)
        return
    # On CPU one tensor at a time, while it is in cache: the multi-tensor ops
    # pass over the whole group once per op (2-3x slower in bench_optim).
    for y, g, v, z in zip(params, grads, vs, zs):
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        d = v.div(bc).sqrt_().add_(eps)
        if wd:
            ui = torch.div(g, d, out=d).add_(y, alpha=wd)
            y.lerp_(z, ckp1).add_(ui, alpha=a)
            z.sub_(ui, alpha=lr)
        else:  # u = g / d folded into the two updates
            y.lerp_(z, ckp1).addcdiv_(g, d, value=a)
            z.addcdiv_(g, d, value=-lr)


def _sparse_adam(opt: Optimizer, plan: GroupPlan, group: Group, plans: list[ParamPlan],
                 params: list[torch.Tensor], grads: list[torch.Tensor], lr: float) -> bool:
    # torch's SparseAdam on an embedding's gradient (rows of a hybrid COO
    # tensor): the rows' moments read with index_select and written back with
    # index_copy_ (m_old + (g - m_old)(1 - b1), the sum torch's sparse add
    # makes), the weight moved with one index_add_; no sparse tensor is built.
    for g in grads:
        if not g.is_sparse or g.sparse_dim() != 1 or g.dim() != 2:
            return False  # the reference path: its error for dense gradients, other layouts
    cache = _cached(opt, plan, group, plans, params)
    if cache is None:
        return False
    leaf = opt.leaves[plan.sf]
    b1, b2 = leaf.option(group, "betas")
    eps = leaf.option(group, "eps")
    sign = -1.0 if group.get("maximize", False) else 1.0
    k_step = opt._keys[plan.sf][0]
    for p, g, m, v, d in zip(params, grads, cache.zs, cache.vs, cache.states):
        t = d[k_step] + 1
        d[k_step] = t
        g = g.coalesce()
        rows, vals = g.indices()[0], g.values()
        if sign < 0:
            vals = -vals
        m_old = m.index_select(0, rows)
        numer = vals.sub(m_old).mul_(1 - b1).add_(m_old)
        m.index_copy_(0, rows, numer)
        v_old = v.index_select(0, rows)
        denom = vals.pow(2).sub_(v_old).mul_(1 - b2).add_(v_old)
        v.index_copy_(0, rows, denom)
        denom.sqrt_().add_(eps)
        p.index_add_(0, rows, numer.div_(denom), alpha=-(lr * math.sqrt(1 - b2**t) / (1 - b1**t)))
    if cache.prox is not None:
        cache.prox(group["lr"])
    return True


def _asgd(cache: GroupCache, grads: list[torch.Tensor], lr: float, wd: float, lambd: float, alpha: float,
          t0: float) -> None:
    # Asgd.update's arithmetic, in torch's order: w <- w (1 - lambd eta) - eta u, u = g + wd w;
    # ax <- ax + mu (w - ax) (or w while mu is 1); then eta and mu for the next step, once.
    steps = cache.steps
    etas, mus = cache.scalars
    params, axs = cache.params, cache.zs
    steps.add_(1)  # type: ignore[union-attr]
    e = etas[0].item()
    averaging = mus[0].item() != 1
    mu_list = list(mus.unbind(0)) if averaging else []
    if cache.foreach:
        u = torch._foreach_add(grads, params, alpha=wd) if wd else grads
        torch._foreach_mul_(params, 1 - lambd * e)
        torch._foreach_add_(params, u, alpha=-e)
        if averaging:
            diff = torch._foreach_sub(params, axs)
            torch._foreach_mul_(diff, mu_list)
            torch._foreach_add_(axs, diff)
        else:
            torch._foreach_copy_(axs, params)
    else:
        for i, (p, g, ax) in enumerate(zip(params, grads, axs)):
            ui = g.add(p, alpha=wd) if wd else g  # at w before its decay, as torch
            p.mul_(1 - lambd * e).add_(ui, alpha=-e)
            if averaging:
                ax.add_(p.sub(ax).mul_(mu_list[i]))
            else:
                ax.copy_(p)
    t = steps[0].item()  # type: ignore[index]
    etas.fill_(lr / ((1 + lambd * lr * t) ** alpha))
    mus.fill_(1 / max(1, t - t0))


def _stacked(states: list[dict[str, Any]], key: str) -> torch.Tensor | None:
    # The 0-dim tensors under key as views of one buffer (as the fused path
    # keeps Adam's step counters): one op advances them all. None if they differ.
    buf = torch.stack([d[key] for d in states])
    if bool((buf != buf[0]).any()):
        return None
    for d, v in zip(states, buf.unbind(0)):
        d[key] = v
    return buf


def _build_asgd(opt: Optimizer, plan: GroupPlan, group: Group, params: list[torch.Tensor],
                states: list[dict[str, Any]]) -> tuple | None:
    k_step, k_eta, k_mu, k_ax = opt._keys[plan.sf]
    fresh = [d.get(k_eta) is None for d in states]
    if any(fresh) and not all(fresh):
        return None  # some parameters stepped before, some not
    for name in (k_step, k_mu) if all(fresh) else (k_step, k_mu, k_eta):
        first = states[0][name]
        if any(d[name].dtype is not first.dtype or d[name].device != first.device for d in states):
            return None
    if all(fresh):  # Asgd.update's first step: eta starts at lr, in mu's dtype
        lr = float(opt.leaves[plan.sf].option(group, "lr"))
        for d in states:
            d[k_eta] = torch.tensor(lr, dtype=d[k_mu].dtype, device=d[k_mu].device)
    steps, etas, mus = (_stacked(states, k) for k in (k_step, k_eta, k_mu))
    if steps is None or etas is None or mus is None:
        return None
    return steps, [d[k_ax] for d in states], (etas, mus)


def _build(opt: Optimizer, plan: GroupPlan, group: Group, plans: list[ParamPlan],
           params: list[torch.Tensor]) -> GroupCache | None:
    p0 = params[0]
    dtype, device = p0.dtype, p0.device
    if not dtype.is_floating_point or not (p0.is_cpu or p0.is_cuda):
        return None
    if type(p0) not in (torch.Tensor, torch.nn.Parameter):
        return None
    if any(p.dtype is not dtype or p.device != device or p.is_sparse for p in params):
        return None
    with_grad = {id(p) for p in params}
    picked = [pl for p, pl in zip(group["params"], plans) if id(p) in with_grad]
    state = opt.state
    states = [state[p] for p in params]
    for p, pl, d in zip(params, picked, states):
        if not d:
            opt.init_state(p, pl, d)
    prox = None
    if opt.prox is not None:
        pairs = [(p, pl.factor) for p, pl in zip(params, picked) if pl.factor is not None]
        prox = prox_runner(opt.prox, [p for p, _ in pairs], [f for _, f in pairs])
    decay_all = plan.decay is None or all(pl.active[plan.decay] for pl in picked)
    if plan.algo == "sparse_adam":
        _, k_m, k_v = opt._keys[plan.sf]
        return GroupCache(group, params, states, [d[k_v] for d in states], None, [d[k_m] for d in states],
                          p0.is_cuda, dtype, True, prox)
    if plan.algo == "adafactor":
        k_step, k_row, k_col, k_var = opt._keys[plan.sf]
        steps = _stacked(states, k_step)
        if steps is None:
            return None
        extra = ([d.get(k_row) for d in states], [d.get(k_col) for d in states], [d.get(k_var) for d in states],
                 [pl.active[plan.decay] for pl in picked])  # type: ignore[index]
        return GroupCache(group, params, states, [], steps, [], p0.is_cuda, dtype, decay_all, prox, (), extra)
    if plan.algo == "asgd":
        built = _build_asgd(opt, plan, group, params, states)
        if built is None:
            return None
        steps, axs, scalars = built
        return GroupCache(group, params, states, [], steps, axs, p0.is_cuda, dtype, decay_all, prox, scalars)
    k_z, k_k, k_wsum, k_lrmax = opt._keys[plan.sf]
    first = (states[0].get(k_k), states[0].get(k_wsum), states[0].get(k_lrmax))
    if any((d.get(k_k), d.get(k_wsum), d.get(k_lrmax)) != first for d in states):
        return None  # counters differ: each parameter needs its own step
    zs = [d[k_z] for d in states]
    vs: list[torch.Tensor] = []
    steps = None
    if plan.second is not None:
        k_step, k_v = opt._keys[plan.second]
        steps = _stacked(states, k_step)
        if steps is None:
            return None
        vs = [d[k_v] for d in states]
    return GroupCache(group, params, states, vs, steps, zs, p0.is_cuda, dtype, decay_all, prox)
