"""``Optimizer``: a ``torch.optim.Optimizer`` that runs a chain of transforms."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from gradwise.errors import ConfigError
from gradwise.optim import _delegate, _dispatch, _group
from gradwise.optim._base import EmptyState, Group, Transform, chain, leaves_of
from gradwise.optim._decay import AddDecayedWeights, Prox, apply_prox
from gradwise.optim._transforms import ScaleByLr
from gradwise.regularization import selects
from gradwise.regularization._penalties import Factor


class ParamPlan(NamedTuple):
    """What the chain does to one parameter, fixed by its name and shape."""

    active: tuple[bool, ...]  # per leaf transform: does its mask select the parameter
    factor: Factor | None  # prox penalty factor, None when the prox skips it


def _state_keys(leaves: Sequence[Transform]) -> tuple[tuple[str, ...], ...]:
    # Field names of each leaf's state; a name already taken by an earlier leaf
    # (two momentum transforms, say) gets the leaf's index as a prefix.
    seen: set[str] = set()
    out = []
    for j, leaf in enumerate(leaves):
        keys = []
        for f in leaf.State._fields:
            key = f if f not in seen else f"{j}.{f}"
            seen.add(key)
            keys.append(key)
        out.append(tuple(keys))
    return tuple(out)


class Optimizer(torch.optim.Optimizer):
    """Run a transform chain as a ``torch.optim.Optimizer``.

    Each step computes, for every parameter ``w`` with a gradient ``g``,
    ``u = chain(g)`` and applies ``w <- w + u``, then the proximal step of a
    trailing ``prox``. It works with ``zero_grad``, closures, every
    ``torch.optim.lr_scheduler``, param groups with their own options and
    ``state_dict``/``load_state_dict`` (a resumed run is bit-identical).

    Args:
        params: tensors, ``model.named_parameters()`` (needed for name-pattern
            masks) or param-group dicts, as for any torch optimizer.
        transform: a transform, a ``chain`` or a list of transforms.
        fused: ``None`` (default) lets the dispatcher run torch's fused
            kernels when the chain is exactly SGD or Adam(W) and the tensors
            allow it; ``False`` always runs the per-tensor reference path;
            ``True`` requires a chain the fused path covers.
        foreach: ``None`` (default) runs a chain that is exactly RMSprop,
            Adamax, Adadelta, NAdam or RAdam on torch's multi-tensor
            functional form (``gradwise.optim._delegate``), and a
            Schedule-Free or ASGD chain a group at a time (``gradwise.optim._group``),
            when the tensors allow it; ``False`` runs the per-tensor reference path.
        **defaults: param-group options (``lr=...``); they override the
            hyperparameters the transforms declare.

    Example:
        >>> import torch
        >>> from gradwise.optim import Optimizer, chain, scale_by_adam, scale_by_lr
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = Optimizer(model.parameters(), chain(scale_by_adam(), scale_by_lr()), lr=1e-2)
        >>> model(torch.ones(2, 3)).sum().backward()
        >>> opt.step(); opt.zero_grad()
    """

    def __init__(
        self,
        params: Iterable[Any],
        transform: Transform | Sequence[Transform],
        *,
        fused: bool | None = None,
        foreach: bool | None = None,
        **defaults: Any,
    ) -> None:
        leaves = leaves_of(transform)
        hyper: dict[str, Any] = {}
        body = [leaf for leaf in leaves if not leaf.post_step]
        for j, leaf in enumerate(leaves):
            if leaf.post_step and j != len(leaves) - 1:
                raise ConfigError(f"{leaf!r} must be the last transform of the chain")
            if leaf.moves_param and leaf is not body[-1]:
                raise ConfigError(f"{leaf!r} makes the step itself: it must be the last transform "
                                  "of the chain (before a prox)")
            for key, value in leaf.hyperparameters().items():
                if key in hyper and hyper[key] != value and key not in defaults:
                    raise ConfigError(
                        f"two transforms read the group option {key!r} with different values "
                        f"({hyper[key]!r} and {value!r}); give them the same value"
                    )
                hyper[key] = value
        hyper.update(defaults)
        self.transform = transform if isinstance(transform, Transform) else chain(*transform)
        self.leaves = leaves
        self.prox = leaves[-1] if leaves and isinstance(leaves[-1], Prox) else None
        if self.prox is not None and "lr" not in hyper:
            raise ConfigError("prox needs a step size: add scale_by_lr to the chain or pass lr=")
        self.fused = fused
        self._keys = _state_keys(leaves)
        self._tail = _tail(leaves)
        self._fast = _dispatch.match(leaves) if fused is not False else None
        if fused and self._fast is None:
            raise ConfigError(
                "fused=True needs a chain that is exactly SGD, Adam(W) or Adagrad: [add_l2] "
                "[scale_by_momentum | scale_by_adam | scale_by_adagrad] [add_decayed_weights] "
                "scale_by_lr [prox]"
            )
        # Chains that are exactly another torch.optim algorithm (RMSprop, Adamax,
        # NAdam, ...) run on torch's multi-tensor functional form instead.
        self._delegate = _delegate.match(leaves) if self._fast is None and foreach is not False else None
        # Schedule-Free and ASGD chains run a group at a time (gradwise.optim._group).
        self._group = (_group.match(leaves) if self._fast is None and self._delegate is None
                       and foreach is not False else None)
        self._plans: dict[int, tuple[Group, list[ParamPlan]]] = {}
        # Per group: the fused path's GroupCache or the delegate's DelegateCache.
        self._fast_cache: dict[int, Any] = {}
        super().__init__(params, hyper)

    # -- per-parameter plans (masks and penalty factors) --------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self.plan(self.param_groups[-1])  # a bad mask fails here, not at step 1

    def plan(self, group: Group) -> list[ParamPlan]:
        """The masks' decisions for each parameter of ``group`` (cached)."""
        cached = self._plans.get(id(group))
        if cached is not None and cached[0] is group and len(cached[1]) == len(group["params"]):
            return cached[1]
        params = group["params"]
        names = group.get("param_names") or [None] * len(params)
        plans = []
        for name, p in zip(names, params):
            active = tuple(selects(getattr(leaf, "mask", None), name, p) for leaf in self.leaves)
            factor = None
            if self.prox is not None and active[-1]:
                if p.is_complex():
                    raise ConfigError(
                        f"prox: parameter {name or tuple(p.shape)} is complex ({p.dtype}); the "
                        "penalties' proximal steps are defined for real tensors only; exclude it "
                        "with the penalty's mask or use a real parametrization"
                    )
                factor = self.prox.penalty.factor_for(name, p)
            plans.append(ParamPlan(active, factor))
        self._plans[id(group)] = (group, plans)
        return plans

    def init_state(self, param: Tensor, plan: ParamPlan, state: dict[str, Any]) -> None:
        """Fill ``state`` (``self.state[param]``) with the leaves' initial states."""
        for leaf, keys, on in zip(self.leaves, self._keys, plan.active):
            if on:
                # A state field that is None (not used under these options)
                # stays out of the dict, so the keys are torch's.
                state.update((k, v) for k, v in zip(keys, leaf.init(param)) if v is not None)

    _PICKLED: tuple[str, ...] = ("transform", "leaves", "prox", "fused", "_keys", "_fast", "_delegate", "_group", "_tail")

    def __getstate__(self) -> dict[str, Any]:
        # torch pickles only defaults, state and param_groups; the chain is
        # needed too (copy.deepcopy, multiprocessing). Caches are rebuilt.
        out = super().__getstate__()
        out.update({k: self.__dict__[k] for k in self._PICKLED})
        return out

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_delegate", None)
        self.__dict__.setdefault("_group", None)
        self._plans = {}
        self._fast_cache = {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._plans.clear()
        self._fast_cache.clear()
        # torch keeps the saved 'step' tensor itself (shared with a live
        # optimizer the state_dict came from) and where it was; copy it to the
        # parameter's device in float32, where the fused kernels read it.
        for p, st in self.state.items():
            for k, v in st.items():
                if (k == "step" or k.endswith(".step")) and isinstance(v, Tensor):
                    st[k] = v.to(device=p.device, dtype=torch.float32, copy=True)

    # -- the step ------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """Apply one update to every parameter that has a gradient; return the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        rest = []
        for group in self.param_groups:
            plans = self.plan(group)
            if self._fast is not None and _dispatch.run(self, self._fast, group, plans):
                continue
            if self._delegate is not None and _delegate.run(self, self._delegate, group, plans):
                continue
            if self._group is not None and _group.run(self, self._group, group, plans):
                continue
            rest.append((group, plans))
        if rest:
            self._reference_step(rest)
        return loss

    def _reference_step(self, work: list[tuple[Group, list[ParamPlan]]]) -> None:
        # Breadth first, transform by transform over all parameters, so that a
        # global transform (clip_by_global_norm) sees every update at once.
        # A complex parameter runs as its real view (..., 2), as torch.optim
        # does: real and imaginary parts are two independent real numbers, so
        # Adam's second moment is re^2 and im^2, never the complex square.
        params: list[Tensor] = []
        groups: list[Group] = []
        plans: list[ParamPlan] = []
        states: list[dict[str, Any]] = []
        ups: list[Tensor] = []
        cplx: list[bool] = []
        for group, group_plans in work:
            self._fast_cache.pop(id(group), None)  # this path may replace state tensors
            maximize = bool(group.get("maximize", False))
            for p, plan in zip(group["params"], group_plans):
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse and not any(getattr(t, "sparse", False) for t in self.leaves):
                    raise RuntimeError("this chain does not take sparse gradients "
                                       "(nn.Embedding(sparse=True)); use gradwise.optim.sparse_adam")
                st = self.state[p]
                if not st:
                    self.init_state(p, plan, st)
                if maximize:
                    g = -g
                cplx.append(p.is_complex())
                if cplx[-1]:
                    p, g = torch.view_as_real(p), torch.view_as_real(g)
                params.append(p)
                groups.append(group)
                plans.append(plan)
                states.append(st)
                ups.append(g)
        tail = self._tail
        stop = tail[0] if tail is not None else len(self.leaves)
        if any(leaf.tree for leaf in self.leaves):
            # Breadth first, so that a global transform sees every update.
            for j in range(stop):
                leaf = self.leaves[j]
                if leaf.tree:
                    ups = leaf.update_tree(ups)  # type: ignore[attr-defined]
                    continue
                for i, p in enumerate(params):
                    ups[i] = self._leaf(j, p, ups[i], groups[i], plans[i], states[i], cplx[i])
            for i, p in enumerate(params):
                self._finish(tail, p, ups[i], groups[i], plans[i])
        else:
            # Depth first: one parameter's whole chain while its tensors are in cache.
            # The real, unmasked leaves run inline (_leaf's body without its
            # call): with a few leaves per parameter the calls were a
            # measurable share of a step on tens of tensors.
            run = [(j, self._keys[j], leaf.State, leaf.update)
                   for j, leaf in enumerate(self.leaves[:stop]) if not leaf.post_step]
            for i, p in enumerate(params):
                u, g, plan, d = ups[i], groups[i], plans[i], states[i]
                if cplx[i]:
                    for j in range(stop):
                        u = self._leaf(j, p, u, g, plan, d, True)
                else:
                    active = plan.active
                    for j, keys, state_type, update in run:
                        if not active[j]:
                            continue
                        st = state_type(*map(d.get, keys)) if keys else _EMPTY
                        u, new = update(u, st, p, g)
                        if new is not st:
                            for k, v in zip(keys, new):
                                if v is not None:
                                    d[k] = v
                self._finish(tail, p, u, g, plan)
        if self.prox is not None:
            for group, group_plans in work:
                pairs = [(p, pl.factor) for p, pl in zip(group["params"], group_plans)
                         if p.grad is not None and pl.factor is not None]
                apply_prox(self.prox, ([p for p, _ in pairs], [f for _, f in pairs]), group["lr"])

    def _leaf(self, j: int, p: Tensor, u: Tensor, group: Group, plan: ParamPlan,
              d: dict[str, Any], cplx: bool) -> Tensor:
        # Leaf j of the chain on one parameter; its state is read from and
        # written back to the flat state dict d under the leaf's keys.
        leaf = self.leaves[j]
        if leaf.post_step or not plan.active[j]:
            return u
        keys = self._keys[j]
        if cplx:
            st = leaf.State(*[_as_real(d.get(k)) for k in keys])
            u, new = leaf.update(u, st, p, group)
            if new is not st:
                d.update((k, _as_complex(v, p)) for k, v in zip(keys, new) if v is not None)
            return u
        st = leaf.State(*map(d.get, keys)) if keys else _EMPTY
        u, new = leaf.update(u, st, p, group)
        if new is not st:
            for k, v in zip(keys, new):
                if v is not None:
                    d[k] = v
        return u

    def _finish(self, tail: tuple[int, int, int | None] | None, p: Tensor, u: Tensor | None,
                group: Group, plan: ParamPlan) -> None:
        # Apply the chain's output. With a foldable tail, w <- w (1 - lr wd) - lr u
        # in place, as torch.optim's loops do it: no tensor for -lr (u + wd w).
        if u is None:  # a moves_param transform stepped p itself
            return
        if tail is None:
            p.add_(u)
            return
        _, j_lr, j_dec = tail
        lr = group["lr"]
        if isinstance(lr, Tensor):  # keep the Tensor arithmetic of the transforms
            for j in (j_dec, j_lr):
                if j is not None and plan.active[j]:
                    u, _ = self.leaves[j].update(u, EmptyState(), p, group)
            p.add_(u)
            return
        if j_dec is not None and plan.active[j_dec]:
            wd = group["weight_decay"]
            if wd:
                p.mul_(1 - lr * wd)
        p.add_(u, alpha=-lr)

_EMPTY = EmptyState()


def _tail(leaves: Sequence[Transform]) -> tuple[int, int, int | None] | None:
    """``(first folded leaf, scale_by_lr, add_decayed_weights or None)`` when the chain ends so.

    Only when ``scale_by_lr`` is the last leaf before a ``prox`` and has no mask.
    """
    body = [j for j, t in enumerate(leaves) if not t.post_step]
    if not body:
        return None
    j = body[-1]
    if not isinstance(leaves[j], ScaleByLr) or leaves[j].mask not in (None, "all") or len(body) != j + 1:
        return None
    if j > 0 and isinstance(leaves[j - 1], AddDecayedWeights):
        return (j - 1, j, j - 1)
    return (j, j, None)


def _as_real(v: Any) -> Any:
    # A complex state tensor as its real view (..., 2); anything else unchanged.
    return torch.view_as_real(v) if isinstance(v, Tensor) and v.is_complex() else v


def _as_complex(v: Any, real_param: Tensor) -> Any:
    # A state tensor a transform created on the real view goes back to complex,
    # so the state keeps torch's complex dtypes (and its state_dict swaps).
    if (isinstance(v, Tensor) and not v.is_complex() and v.dim()
            and v.shape == real_param.shape):
        return torch.view_as_complex(v if v.is_contiguous() else v.contiguous())
    return v
