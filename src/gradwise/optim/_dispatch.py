"""The one place that chooses between the reference path and torch's fused kernels.

When a chain is exactly a standard algorithm,

    [add_l2] [scale_by_momentum] [add_decayed_weights] scale_by_lr [prox]   (SGD, SGDW)
    [add_l2] scale_by_adam       [add_decayed_weights] scale_by_lr [prox]   (Adam, AdamW)

one call of torch's fused multi-tensor kernel (``_fused_sgd_``, ``_fused_adam_``,
``_fused_adamw_``) per param group does the whole step. On CPU that is 2-5x
the per-tensor loop (benchmarks/bench_optim.py), mostly because a step over
many small tensors is dominated by per-op dispatch. The foreach kernels are
not used: on CPU they loop over tensors in C++ and measured no faster than
the reference path. Tests check each fused path against the reference path.

``run`` returns False, before changing anything, whenever the tensors do not
fit a fused kernel (sparse, complex, non-contiguous, mixed device or dtype,
a tensor ``lr``); the optimizer then takes the reference path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from gradwise.optim._decay import AddDecayedWeights, AddL2
from gradwise.optim._transforms import ScaleByAdam, ScaleByLr, ScaleByMomentum

if TYPE_CHECKING:
    from gradwise.optim._base import Group, Transform
    from gradwise.optim._optimizer import Optimizer, ParamPlan


class FastPlan(NamedTuple):
    """Where the pieces of a standard chain sit (indices into the leaves)."""

    adam: bool
    core: int | None  # ScaleByAdam or ScaleByMomentum
    decay: int | None  # AddL2 or AddDecayedWeights
    decoupled: bool


def _unmasked(t: Transform) -> bool:
    return getattr(t, "mask", None) in (None, "all")


def match(leaves: tuple[Transform, ...]) -> FastPlan | None:
    """The ``FastPlan`` of ``leaves`` if a fused kernel computes exactly that chain."""
    body = list(leaves[:-1] if leaves and leaves[-1].post_step else leaves)
    n = len(body)
    i = 0
    decay = core = None
    decoupled = False
    if i < n and isinstance(body[i], AddL2):
        decay, i = i, i + 1
    if i < n and isinstance(body[i], (ScaleByMomentum, ScaleByAdam)) and _unmasked(body[i]):
        core, i = i, i + 1
    if i < n and isinstance(body[i], AddDecayedWeights) and decay is None:
        decay, decoupled, i = i, True, i + 1
    if i != n - 1 or not isinstance(body[i], ScaleByLr) or not _unmasked(body[i]):
        return None
    adam = core is not None and isinstance(body[core], ScaleByAdam)
    return FastPlan(adam, core, decay, decoupled)


def run(opt: Optimizer, fast: FastPlan, group: Group, plans: list[ParamPlan]) -> bool:
    """Do ``group``'s step with a fused kernel; False (nothing done) if it cannot."""
    lr = group["lr"]
    if isinstance(lr, torch.Tensor):
        return False
    params, grads, picked = [], [], []
    for p, plan in zip(group["params"], plans):
        g = p.grad
        if g is not None:
            params.append(p)
            grads.append(g)
            picked.append(plan)
    if not params:
        return True
    p0 = params[0]
    dtype, device = p0.dtype, p0.get_device()  # get_device: an int, cheaper than .device
    if not dtype.is_floating_point or not (p0.is_cpu or p0.is_cuda):
        return False
    for p, g in zip(params, grads):
        if (
            p.dtype is not dtype
            or g.dtype is not dtype
            or g.is_sparse
            or p.get_device() != device
            or g.get_device() != device
            or not p.is_contiguous()
            or not g.is_contiguous()
        ):
            return False
    states = opt.state
    for p, plan in zip(params, picked):
        st = states[p]
        if not st:
            opt.init_state(p, plan, st)
    if fast.adam:
        done = _adam(opt, fast, group, params, grads, picked)
    else:
        done = _sgd(opt, fast, group, params, grads, picked)
    if done and opt.prox is not None:
        from gradwise.optim._optimizer import apply_prox

        apply_prox(opt.prox, [(p, pl.factor) for p, pl in zip(params, picked) if pl.factor is not None], lr)
    return done


def _split(fast: FastPlan, group: Group, plans: list[ParamPlan]) -> list[tuple[list[int] | None, float]]:
    # One kernel call takes one weight_decay: call it once for the parameters
    # the decay mask selects and once (with 0) for the others. None = all.
    wd = group["weight_decay"] if fast.decay is not None else 0.0
    if not wd:
        return [(None, 0.0)]
    on = [i for i, pl in enumerate(plans) if pl.active[fast.decay]]  # type: ignore[index]
    if len(on) == len(plans):
        return [(None, wd)]
    off = [i for i, pl in enumerate(plans) if not pl.active[fast.decay]]  # type: ignore[index]
    return [(s, w) for s, w in ((on, wd), (off, 0.0)) if s]


def _pick(xs: list[Any], idx: list[int] | None) -> list[Any]:
    return xs if idx is None else [xs[i] for i in idx]


def _advance_steps(opt: Optimizer, group: Group, params: list, steps: list, key: str) -> list:
    """Add 1 to every step counter of this step's parameters; return the counters.

    torch's fused path adds 1 to each 0-dim counter with a foreach op, one
    kernel per parameter: on CPU, 200 parameters cost about as much as the
    Adam kernel itself. Here the counters are 0-dim views of one buffer per
    group (still one ``step`` tensor per parameter in ``state``), advanced by
    one ``add_``. The buffer is rebuilt whenever the set of counters changes
    (first step, a parameter without gradient, ``load_state_dict``).
    """
    cached = opt._step_buffers.get(id(group))
    if (
        cached is not None
        and cached[0] is group
        and len(cached[1]) == len(steps)
        and all(a is b for a, b in zip(cached[1], steps))
    ):
        cached[2].add_(1)
        return steps
    buf = torch.stack(steps)
    views = list(buf.unbind(0))
    for p, v in zip(params, views):
        opt.state[p][key] = v
    opt._step_buffers[id(group)] = (group, views, buf)
    buf.add_(1)
    return views


def _adam(opt: Optimizer, fast: FastPlan, group: Group, params, grads, plans) -> bool:
    k_step, k_m, k_v, k_vmax = opt._keys[fast.core]  # type: ignore[index]
    amsgrad = group["amsgrad"]
    steps, ms, vs, vmaxs = [], [], [], []
    state = opt.state
    device = params[0].get_device()
    for p in params:
        st = state[p]
        step = st[k_step]
        if step.get_device() != device:
            return False
        steps.append(step)
        ms.append(st[k_m])
        vs.append(st[k_v])
        if amsgrad:
            if st.get(k_vmax) is None:
                st[k_vmax] = torch.zeros_like(p, memory_format=torch.preserve_format)
            vmaxs.append(st[k_vmax])
    b1, b2 = group["betas"]
    kernel = torch._fused_adamw_ if fast.decoupled else torch._fused_adam_
    steps = _advance_steps(opt, group, params, steps, k_step)
    for idx, wd in _split(fast, group, plans):
        kernel(
            _pick(params, idx), _pick(grads, idx), _pick(ms, idx), _pick(vs, idx),
            _pick(vmaxs, idx) if amsgrad else [], _pick(steps, idx),
            lr=group["lr"], beta1=b1, beta2=b2, weight_decay=wd, eps=group["eps"],
            amsgrad=amsgrad, maximize=False,
        )
    return True


def _sgd(opt: Optimizer, fast: FastPlan, group: Group, params, grads, plans) -> bool:
    lr = group["lr"]
    mu = group["momentum"] if fast.core is not None else 0.0
    bufs: list[Any] = []
    first = False
    if mu:
        (key,) = opt._keys[fast.core]  # type: ignore[index]
        bufs = [opt.state[p].get(key) for p in params]
        missing = sum(b is None for b in bufs)
        if 0 < missing < len(bufs):
            return False  # some buffers new, some not: one kernel call cannot do both
        first = missing > 0
        if first:
            for i, p in enumerate(params):
                bufs[i] = opt.state[p][key] = torch.empty_like(grads[i])
    damp = group["dampening"] if mu else 0.0
    nesterov = bool(group["nesterov"]) if mu else False
    for idx, wd in _split(fast, group, plans):
        ps = _pick(params, idx)
        if fast.decoupled and wd:
            # SGDW: w <- w (1 - lr wd) - lr b, the decay kept out of the buffer.
            torch._foreach_mul_(ps, 1.0 - lr * wd)
            wd = 0.0
        torch._fused_sgd_(
            ps, _pick(grads, idx), _pick(bufs, idx) if mu else [],
            weight_decay=wd, momentum=mu, lr=lr, dampening=damp, nesterov=nesterov,
            maximize=False, is_first_step=first,
        )
    return True
