"""L-BFGS with an optional strong-Wolfe line search, as ``torch.optim.LBFGS``.

L-BFGS is not a chain of per-parameter transforms: one step runs up to
``max_iter`` quasi-Newton iterations on the flat vector of all parameters and
calls the closure again inside its line search. So it is its own
``torch.optim.Optimizer``, built from three plain functions:
``lbfgs_direction`` (the two-loop recursion), ``strong_wolfe`` (the line
search, Nocedal & Wright 2006, algorithms 3.5-3.6) and ``cubic_interpolate``.
Its state (``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``,
``prev_flat_grad``, ``prev_loss``, ``func_evals``, ``n_iter``, ``al``) has
torch's keys, so state_dicts swap with torch's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from gradwise.errors import ConfigError
from gradwise.optim import _validate as check


def cubic_interpolate(x1: float | Tensor, f1: float | Tensor, g1: Tensor, x2: float | Tensor,
                      f2: float | Tensor, g2: Tensor,
                      bounds: tuple[float | Tensor, float | Tensor] | None = None) -> float | Tensor:
    """Minimizer of the cubic through ``(x1, f1, g1)`` and ``(x2, f2, g2)``, clipped to ``bounds``.

    Nocedal & Wright (3.59); the midpoint of the bounds when the cubic has no
    minimizer.
    """
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = d2_square.sqrt()
    if x1 <= x2:
        pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(pos, lo), hi)


def strong_wolfe(obj: Callable, x: Any, t: float | Tensor, d: Tensor, f: float, g: Tensor, gtd: Tensor,
                 c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
                 max_ls: int = 25) -> tuple[float, Tensor, float | Tensor, int]:
    """Step ``t`` along ``d`` satisfying the strong Wolfe conditions; ``(f_new, g_new, t, evals)``.

    ``obj(x, t, d)`` returns the loss and flat gradient at ``x + t d``.
    Conditions: ``f(t) <= f + c1 t g.d`` and ``|g(t).d| <= -c2 g.d``. First a
    bracketing phase (steps grow by cubic extrapolation up to 10x), then
    zoom by safeguarded cubic interpolation.
    """
    d_norm = d.abs().max()
    g = g.clone(memory_format=torch.contiguous_format)
    f_new, g_new = obj(x, t, d)
    evals, it = 1, 0
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    while it < max_ls:
        armijo_fails = f_new > (f + c1 * t * gtd) or (it > 1 and f_new >= f_prev)
        if not armijo_fails and abs(gtd_new) <= -c2 * gtd:
            br, br_f, br_g, done = [t], [f_new], [g_new], True
            break
        if armijo_fails or gtd_new >= 0:  # a minimizer lies in [t_prev, t]
            br, br_f = [t_prev, t], [f_prev, f_new]
            br_g = [g_prev, g_new.clone(memory_format=torch.contiguous_format)]
            br_gtd = [gtd_prev, gtd_new]
            break
        lo_step, hi_step = t + 0.01 * (t - t_prev), t * 10
        t_prev, t = t, cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                         bounds=(lo_step, hi_step))
        f_prev, g_prev, gtd_prev = f_new, g_new.clone(memory_format=torch.contiguous_format), gtd_new
        f_new, g_new = obj(x, t, d)
        evals += 1
        gtd_new = g_new.dot(d)
        it += 1
    if it == max_ls:
        br, br_f, br_g = [0, t], [f, f_new], [g, g_new]
    insufficient = False
    low, high = (0, 1) if br_f[0] <= br_f[-1] else (1, 0)
    while not done and it < max_ls:
        if abs(br[1] - br[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(br[0], br_f[0], br_gtd[0], br[1], br_f[1], br_gtd[1])
        # Safeguard: stay at least 10% of the bracket away from its ends.
        eps = 0.1 * (max(br) - min(br))
        if min(max(br) - t, t - min(br)) < eps:
            if insufficient or t >= max(br) or t <= min(br):
                t = max(br) - eps if abs(t - max(br)) < abs(t - min(br)) else min(br) + eps
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        f_new, g_new = obj(x, t, d)
        evals += 1
        gtd_new = g_new.dot(d)
        it += 1
        if f_new > (f + c1 * t * gtd) or f_new >= br_f[low]:
            br[high], br_f[high] = t, f_new
            br_g[high], br_gtd[high] = g_new.clone(memory_format=torch.contiguous_format), gtd_new
            low, high = (0, 1) if br_f[0] <= br_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (br[high] - br[low]) >= 0:
                br[high], br_f[high], br_g[high], br_gtd[high] = br[low], br_f[low], br_g[low], br_gtd[low]
            br[low], br_f[low] = t, f_new
            br_g[low], br_gtd[low] = g_new.clone(memory_format=torch.contiguous_format), gtd_new
    return br_f[low], br_g[low], br[low], evals


def lbfgs_direction(grad: Tensor, dirs: Sequence[Tensor], stps: Sequence[Tensor], ro: Sequence[Any],
                    h_diag: Any, al: list) -> Tensor:
    """The two-loop recursion: ``-H grad`` for the L-BFGS inverse Hessian ``H`` (Nocedal 1980).

    ``dirs`` are the gradient differences ``y``, ``stps`` the steps ``s``,
    ``ro = 1 / (y . s)``, ``h_diag = y.s / y.y`` the initial scaling; ``al``
    is scratch space of length >= len(dirs).
    """
    q = grad.neg()
    for i in range(len(dirs) - 1, -1, -1):
        al[i] = stps[i].dot(q) * ro[i]
        q.add_(dirs[i], alpha=-al[i])
    r = torch.mul(q, h_diag)
    for i in range(len(dirs)):
        be_i = dirs[i].dot(r) * ro[i]
        r.add_(stps[i], alpha=al[i] - be_i)
    return r


class LBFGS(torch.optim.Optimizer):
    """L-BFGS (Liu & Nocedal 1989), as ``torch.optim.LBFGS``; build it with ``lbfgs``.

    ``step(closure)`` needs a closure that zeroes the gradients, computes the
    loss, calls ``backward`` and returns the loss. One param group only.
    """

    def __init__(self, params: Any, lr: Any = 1.0, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None,
                 maximize: bool = False) -> None:
        owner = "lbfgs"
        for name, value in (("max_iter", max_iter), ("history_size", history_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{owner}: {name} must be an integer >= 1; got {value!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        elif isinstance(max_eval, bool) or not isinstance(max_eval, int) or max_eval < 1:
            raise ConfigError(f"{owner}: max_eval must be an integer >= 1 or None; got {max_eval!r}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ConfigError(f"{owner}: line_search_fn must be None or 'strong_wolfe'; got {line_search_fn!r}")
        defaults = dict(lr=check.lr(owner, lr), max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=check.number(owner, "tolerance_grad", tolerance_grad),
                        tolerance_change=check.number(owner, "tolerance_change", tolerance_change),
                        history_size=history_size, line_search_fn=line_search_fn,
                        maximize=check.flag(owner, "maximize", maximize))
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ConfigError(f"{owner}: one param group only (L-BFGS works on the flat vector of all "
                              f"parameters); got {len(self.param_groups)}")

    @property
    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        views = []
        for p in self._params:
            if p.grad is None:
                v = p.new(p.numel()).zero_()
            elif p.grad.is_sparse:
                v = p.grad.to_dense().view(-1)
            else:
                v = p.grad.view(-1)
            views.append(torch.view_as_real(v).view(-1) if v.is_complex() else v)
        flat = torch.cat(views, 0)
        return flat.neg_() if self.param_groups[0].get("maximize", False) else flat

    def _loss(self, closure: Callable) -> float:
        loss = float(closure())
        return -loss if self.param_groups[0].get("maximize", False) else loss

    def _add(self, t: Any, d: Tensor) -> None:
        offset = 0
        for p in self._params:
            v = torch.view_as_real(p) if p.is_complex() else p
            v.add_(d[offset:offset + v.numel()].view_as(v), alpha=t)
            offset += v.numel()

    def _evaluate(self, closure: Callable, x: list[Tensor], t: Any, d: Tensor) -> tuple[float, Tensor]:
        self._add(t, d)
        loss = self._loss(closure)
        g = self._flat_grad()
        for p, saved in zip(self._params, x):
            p.copy_(saved)
        return loss, g

    @torch.no_grad()
    def step(self, closure: Callable) -> Any:  # type: ignore[override]
        """Up to ``max_iter`` L-BFGS iterations; returns the closure's first loss."""
        if closure is None:
            raise ConfigError("lbfgs: step needs a closure that recomputes the loss and its gradients")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        lr = group["lr"]  # a Tensor lr stays one, as in torch, so t has torch's value
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tol_grad, tol_change = group["tolerance_grad"], group["tolerance_change"]
        history = group["history_size"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        first = closure()
        loss = -float(first) if group.get("maximize", False) else float(first)
        evals = 1
        state["func_evals"] += 1
        g = self._flat_grad()
        if g.abs().max() <= tol_grad:
            return first
        d, t = state.get("d"), state.get("t")
        dirs, stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, prev_g, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d, dirs, stps, ro, h_diag = g.neg(), [], [], [], 1
            else:
                y, s = g.sub(prev_g), d.mul(t)
                ys = y.dot(s)
                if ys > 1e-10:  # curvature condition: keep the pair
                    if len(dirs) == history:
                        dirs.pop(0)
                        stps.pop(0)
                        ro.pop(0)
                    dirs.append(y)
                    stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / y.dot(y)
                if "al" not in state:
                    state["al"] = [None] * history
                d = lbfgs_direction(g, dirs, stps, ro, h_diag, state["al"])
            if prev_g is None:
                prev_g = g.clone(memory_format=torch.contiguous_format)
            else:
                prev_g.copy_(g)
            prev_loss = loss
            t = min(1.0, 1.0 / g.abs().sum()) * lr if state["n_iter"] == 1 else lr
            gtd = g.dot(d)
            if gtd > -tol_change:
                break
            ls_evals = 0
            if group["line_search_fn"] is not None:
                x0 = [p.clone(memory_format=torch.contiguous_format) for p in self._params]
                loss, g, t, ls_evals = strong_wolfe(
                    lambda x, t_, d_: self._evaluate(closure, x, t_, d_), x0, t, d, loss, g, gtd,
                    max_ls=max_eval - evals)
                self._add(t, d)
                done = g.abs().max() <= tol_grad
            else:
                self._add(t, d)
                done = False
                if n_iter != max_iter:
                    loss = self._loss(closure)
                    g = self._flat_grad()
                    done = g.abs().max() <= tol_grad
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals
            if (n_iter == max_iter or evals >= max_eval or done
                    or d.mul(t).abs().max() <= tol_change or abs(loss - prev_loss) < tol_change):
                break
        state.update(d=d, t=t, old_dirs=dirs, old_stps=stps, ro=ro, H_diag=h_diag,
                     prev_flat_grad=prev_g, prev_loss=prev_loss)
        return first


def lbfgs(
    params: Any,
    lr: float | Tensor = 1.0,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
    *,
    maximize: bool = False,
) -> LBFGS:
    """L-BFGS (Liu & Nocedal 1989), as ``torch.optim.LBFGS``, strong-Wolfe line search included.

    Each ``step(closure)`` runs up to ``max_iter`` iterations ``w <- w + t d``
    with ``d = -H g`` from the last ``history_size`` pairs (two-loop
    recursion); ``t = lr`` (the first iteration ever: ``min(1, 1/||g||_1) lr``)
    or, with ``line_search_fn="strong_wolfe"``, a step meeting the strong Wolfe
    conditions. It stops early on ``max|g| <= tolerance_grad`` or changes
    below ``tolerance_change``. ``maximize`` (a gradwise addition) ascends.

    Example:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.tensor([1.5, -0.5]))
        >>> opt = lbfgs([w], line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((w - 1) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
    """
    return LBFGS(params, lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size,
                 line_search_fn, maximize)
