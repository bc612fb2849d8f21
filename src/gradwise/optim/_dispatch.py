"""The one place that chooses between the reference path and torch's fused kernels.

When a chain is exactly a standard algorithm,

    [add_l2] [scale_by_momentum] [add_decayed_weights] scale_by_lr [prox]   (SGD, SGDW)
    [add_l2] scale_by_adam       [add_decayed_weights] scale_by_lr [prox]   (Adam, AdamW)
    [add_l2] scale_by_adagrad    [add_decayed_weights] scale_by_lr [prox]   (Adagrad)

each optionally followed by ``lookahead`` (applied after the kernel),
one call of torch's fused multi-tensor kernel (``_fused_sgd_``, ``_fused_adam_``,
``_fused_adamw_``, ``_fused_adagrad_``) per param group does the whole step. On CPU that is 2-5x
the per-tensor loop (benchmarks/bench_optim.py), mostly because a step over
many small tensors is dominated by per-op dispatch. The foreach kernels are
not used: on CPU they loop over tensors in C++ and were never faster than the
fused kernels in that benchmark. Tests check each fused path against the
reference path.

``run`` returns False, before changing anything, whenever the tensors do not
fit a fused kernel (sparse, complex, non-contiguous, mixed device or dtype,
a tensor ``lr``, a tensor subclass such as FSDP's DTensor); the optimizer
then takes the reference path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from gradwise.optim._decay import AddDecayedWeights, AddL2, prox_runner
from gradwise.optim._modern import Lookahead
from gradwise.optim._transforms import ScaleByAdagrad, ScaleByAdam, ScaleByLr, ScaleByMomentum

if TYPE_CHECKING:
    from gradwise.optim._base import Group, Transform
    from gradwise.optim._optimizer import Optimizer, ParamPlan


class FastPlan(NamedTuple):
    """Where the pieces of a standard chain sit (indices into the leaves)."""

    adam: bool
    core: int | None  # ScaleByAdam, ScaleByAdagrad or ScaleByMomentum
    decay: int | None  # AddL2 or AddDecayedWeights
    decoupled: bool
    adagrad: bool = False
    lookahead: int | None = None  # a trailing Lookahead, run after the kernel


def _unmasked(t: Transform) -> bool:
    return getattr(t, "mask", None) in (None, "all")


def match(leaves: tuple[Transform, ...]) -> FastPlan | None:
    """The ``FastPlan`` of ``leaves`` if a fused kernel computes exactly that chain."""
    body = list(leaves[:-1] if leaves and leaves[-1].post_step else leaves)
    ahead = None
    if body and isinstance(body[-1], Lookahead) and _unmasked(body[-1]):
        ahead = len(body) - 1
        body.pop()
    n = len(body)
    i = 0
    decay = core = None
    decoupled = False
    if i < n and isinstance(body[i], AddL2):
        decay, i = i, i + 1
    if i < n and isinstance(body[i], (ScaleByMomentum, ScaleByAdam, ScaleByAdagrad)) and _unmasked(body[i]):
        core, i = i, i + 1
    if i < n and isinstance(body[i], AddDecayedWeights) and decay is None:
        decay, decoupled, i = i, True, i + 1
    if i != n - 1 or not isinstance(body[i], ScaleByLr) or not _unmasked(body[i]):
        return None
    adam = core is not None and isinstance(body[core], ScaleByAdam)
    adagrad = core is not None and isinstance(body[core], ScaleByAdagrad)
    return FastPlan(adam, core, decay, decoupled, adagrad, ahead)


# With a prox after Adam(W) on CPU, the kernel runs on runs of consecutive
# parameters of about this many elements, each followed by its own proximal
# step while its weights are still in cache (benchmarks/bench_optim.py: 1M
# parameters in 200 tensors).
SEGMENT_NUMEL = 131072


class Segment(NamedTuple):
    """A run of a group's parameters that one kernel call steps before its prox."""

    idx: list[int]  # positions in the group's parameters with gradients
    lists: list[list[torch.Tensor]]  # params, m, v, vmax, steps of those positions
    prox: Callable[[float], None] | None


class GroupCache(NamedTuple):
    """What one group's fused step needs, built once and reused while valid.

    Valid while the group, its parameters with gradients and the flags that
    shape the state (amsgrad, momentum on/off) stay the same; the optimizer
    drops it when the reference path or ``load_state_dict`` touches the state.
    """

    group: Group
    key: tuple  # (amsgrad or momentum on, ...) at build time
    params: list[torch.Tensor]
    plans: list[ParamPlan]
    state: list[list[torch.Tensor]]  # adam: m, v, vmax, steps; sgd: buffers
    steps: torch.Tensor | None  # adam: the group's step counters, one buffer
    prox: Callable[[float], None] | None  # the proximal step, given the group's lr
    decayed: tuple[list[int], list[int]] | None = None  # positions the decay mask selects, and not
    # Adam with a prox on CPU: segments per decay subset (None: all), built on
    # first use; the prox then runs segment by segment, not after the kernel.
    segments: dict[Any, list[Segment]] | None = None


def run(opt: Optimizer, fast: FastPlan, group: Group, plans: list[ParamPlan]) -> bool:
    """Do ``group``'s step with a fused kernel; False (nothing done) if it cannot."""
    lr = group["lr"]
    if isinstance(lr, torch.Tensor):
        return False
    params, grads = [], []
    for p in group["params"]:
        g = p.grad
        if g is not None:
            params.append(p)
            grads.append(g)
    if not params:
        return True
    p0 = params[0]
    dtype, device = p0.dtype, p0.get_device()  # get_device: an int, cheaper than .device
    if not dtype.is_floating_point or not (p0.is_cpu or p0.is_cuda):
        return False
    if type(p0) not in (torch.Tensor, torch.nn.Parameter):
        return False  # a tensor subclass (FSDP's DTensor shards): no fused kernel for it
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
    if fast.adagrad:
        key: tuple = ("adagrad",)
    elif fast.adam:
        key = (bool(group["amsgrad"]),)
    else:
        key = (bool(fast.core is not None and group["momentum"]),)
    cache = opt._fast_cache.get(id(group))
    if (
        cache is None
        or cache.group is not group
        or cache.key != key
        or len(cache.params) != len(params)
        or any(a is not b for a, b in zip(cache.params, params))
    ):
        cache = _build(opt, fast, group, plans, params, grads, key)
        if cache is None:
            return False
        opt._fast_cache[id(group)] = cache
    if fast.adagrad:
        _adagrad(fast, group, cache, grads)
    elif fast.adam:
        _adam(opt, fast, group, cache, grads)
    else:
        _sgd(opt, fast, group, cache, grads)
    if fast.lookahead is not None:
        _lookahead(opt, fast.lookahead, cache.params)
    if cache.prox is not None and cache.segments is None:
        cache.prox(lr)
    return True


def _lookahead(opt: Optimizer, j: int, params: list[torch.Tensor]) -> None:
    # The Lookahead transform's own rule, after the fused kernel moved the fast weights.
    leaf = opt.leaves[j]
    k_slow, k_step = opt._keys[j]
    for p in params:
        st = opt.state[p]
        step = st[k_step]
        step += 1
        if int(step.item()) % leaf.k == 0:  # type: ignore[attr-defined]
            p.lerp_(st[k_slow], 1.0 - leaf.alpha)  # type: ignore[attr-defined]
            st[k_slow].copy_(p)


def _build(opt: Optimizer, fast: FastPlan, group: Group, plans: list[ParamPlan],
           params: list[torch.Tensor], grads: list[torch.Tensor], key: tuple) -> GroupCache | None:
    with_grad = {id(p) for p in params}
    picked = [pl for p, pl in zip(group["params"], plans) if id(p) in with_grad]
    state = opt.state
    for p, plan in zip(params, picked):
        if not state[p]:
            opt.init_state(p, plan, state[p])
    steps_buf = None
    if fast.adagrad:
        k_step, k_sum = opt._keys[fast.core]  # type: ignore[index]
        steps_buf = torch.stack([state[p][k_step] for p in params])
        views = list(steps_buf.unbind(0))
        for p, v in zip(params, views):
            state[p][k_step] = v
        lists = [[state[p][k_sum] for p in params], views]
    elif fast.adam:
        k_step, k_m, k_v, k_vmax = opt._keys[fast.core]  # type: ignore[index]
        if key[0]:
            for p in params:
                if state[p].get(k_vmax) is None:
                    state[p][k_vmax] = torch.zeros_like(p, memory_format=torch.preserve_format)
        # torch's fused path adds 1 to each 0-dim step counter, one kernel per
        # parameter: on CPU, for 200 parameters, about as long as the Adam
        # kernel itself. Here the counters of a group become 0-dim views of
        # one buffer (still one 'step' tensor per parameter in the state),
        # all advanced by a single add_.
        steps_buf = torch.stack([state[p][k_step] for p in params])
        views = list(steps_buf.unbind(0))
        for p, v in zip(params, views):
            state[p][k_step] = v
        lists = [
            [state[p][k_m] for p in params],
            [state[p][k_v] for p in params],
            [state[p][k_vmax] for p in params] if key[0] else [],
            views,
        ]
    elif key[0]:
        (k_buf,) = opt._keys[fast.core]  # type: ignore[index]
        bufs = [state[p].get(k_buf) for p in params]
        missing = sum(b is None for b in bufs)
        if 0 < missing < len(bufs):
            return None  # some buffers new, some not: one kernel call cannot do both
        lists = [bufs]
    else:
        lists = [[]]
    prox = None
    if opt.prox is not None:
        pairs = [(p, pl.factor) for p, pl in zip(params, picked) if pl.factor is not None]
        prox = prox_runner(opt.prox, [p for p, _ in pairs], [f for _, f in pairs])
    decayed = None
    if fast.decay is not None:
        on = [i for i, pl in enumerate(picked) if pl.active[fast.decay]]
        off = [i for i, pl in enumerate(picked) if not pl.active[fast.decay]]
        decayed = (on, off)
    # Segments need a prox that takes any subset (float factors, no Tensor
    # ones) and no lookahead, which must see the kernel's step before the prox.
    segmented = (
        fast.adam and prox is not None and fast.lookahead is None and params[0].is_cpu
        and not any(isinstance(pl.factor, torch.Tensor) for pl in picked)
    )
    return GroupCache(group, key, params, picked, lists, steps_buf, prox, decayed, {} if segmented else None)


def _segments(opt: Optimizer, cache: GroupCache, idx: list[int] | None) -> list[Segment]:
    # Runs of consecutive positions of idx (None: all) of about SEGMENT_NUMEL
    # elements; a tensor at least that large is a run of its own.
    segs = cache.segments.get(None if idx is None else tuple(idx))  # type: ignore[union-attr]
    if segs is not None:
        return segs
    order = range(len(cache.params)) if idx is None else idx
    runs: list[list[int]] = []
    size = 0
    for i in order:
        n = cache.params[i].numel()
        if not runs or size + n > SEGMENT_NUMEL:
            runs.append([])
            size = 0
        runs[-1].append(i)
        size += n
    segs = []
    for run in runs:
        lists = [[xs[i] for i in run] if xs else [] for xs in (cache.params, *cache.state)]
        pairs = [(cache.params[i], f) for i in run if (f := cache.plans[i].factor) is not None]
        prox = prox_runner(opt.prox, [p for p, _ in pairs], [f for _, f in pairs]) if pairs else None  # type: ignore[arg-type]
        segs.append(Segment(run, lists, prox))
    cache.segments[None if idx is None else tuple(idx)] = segs  # type: ignore[index]
    return segs


def _split(fast: FastPlan, group: Group, cache: GroupCache) -> list[tuple[list[int] | None, float]]:
    # One kernel call takes one weight_decay: call it once for the parameters
    # the decay mask selects and once (with 0) for the others. None = all.
    wd = group["weight_decay"] if fast.decay is not None else 0.0
    if not wd:
        return [(None, 0.0)]
    on, off = cache.decayed  # type: ignore[misc]
    if not off:
        return [(None, wd)]
    return [(s, w) for s, w in ((on, wd), (off, 0.0)) if s]


def _pick(xs: list[Any], idx: list[int] | None) -> list[Any]:
    return xs if idx is None else [xs[i] for i in idx]


def _adam(opt: Optimizer, fast: FastPlan, group: Group, cache: GroupCache, grads: list[torch.Tensor]) -> None:
    ms, vs, vmaxs, steps = cache.state
    params = cache.params
    amsgrad = cache.key[0]
    b1, b2 = group["betas"]
    lr = group["lr"]
    kernel = torch._fused_adamw_ if fast.decoupled else torch._fused_adam_
    opts = dict(lr=lr, beta1=b1, beta2=b2, eps=group["eps"], amsgrad=amsgrad,
                maximize=bool(group.get("maximize", False)))
    cache.steps.add_(1)  # type: ignore[union-attr]
    for idx, wd in _split(fast, group, cache):
        if cache.segments is None:
            kernel(
                _pick(params, idx), _pick(grads, idx), _pick(ms, idx), _pick(vs, idx),
                _pick(vmaxs, idx) if amsgrad else [], _pick(steps, idx), weight_decay=wd, **opts,
            )
            continue
        # Step a run of parameters, then its prox while its weights are in cache.
        for seg in _segments(opt, cache, idx):
            p_, m_, v_, vmax_, s_ = seg.lists
            kernel(p_, [grads[i] for i in seg.idx], m_, v_, vmax_, s_, weight_decay=wd, **opts)
            if seg.prox is not None:
                seg.prox(lr)


def _adagrad(fast: FastPlan, group: Group, cache: GroupCache, grads: list[torch.Tensor]) -> None:
    sums, steps = cache.state
    lr = group["lr"]
    cache.steps.add_(1)  # type: ignore[union-attr]
    for idx, wd in _split(fast, group, cache):
        ps = _pick(cache.params, idx)
        if fast.decoupled and wd:
            # Decoupled: w <- w (1 - lr wd) first, the decay kept out of the sums.
            torch._foreach_mul_(ps, 1.0 - lr * wd)
            wd = 0.0
        torch._fused_adagrad_(
            ps, _pick(grads, idx), _pick(sums, idx), _pick(steps, idx),
            lr=lr, lr_decay=group["lr_decay"], weight_decay=wd, eps=group["eps"],
            maximize=bool(group.get("maximize", False)),
        )


def _sgd(opt: Optimizer, fast: FastPlan, group: Group, cache: GroupCache, grads: list[torch.Tensor]) -> None:
    lr = group["lr"]
    params = cache.params
    mu = group["momentum"] if cache.key[0] else 0.0
    (bufs,) = cache.state
    first = bool(mu) and bufs[0] is None
    if first:
        (k_buf,) = opt._keys[fast.core]  # type: ignore[index]
        for i, p in enumerate(params):
            bufs[i] = opt.state[p][k_buf] = torch.empty_like(grads[i])
    damp = group["dampening"] if mu else 0.0
    nesterov = bool(group["nesterov"]) if mu else False
    for idx, wd in _split(fast, group, cache):
        ps = _pick(params, idx)
        if fast.decoupled and wd:
            # SGDW: w <- w (1 - lr wd) - lr b, the decay kept out of the buffer.
            torch._foreach_mul_(ps, 1.0 - lr * wd)
            wd = 0.0
        torch._fused_sgd_(
            ps, _pick(grads, idx), _pick(bufs, idx) if mu else [],
            weight_decay=wd, momentum=mu, lr=lr, dampening=damp, nesterov=nesterov,
            maximize=bool(group.get("maximize", False)), is_first_step=first,
        )
