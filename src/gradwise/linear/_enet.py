"""Elastic-net solver: warm-started path, strong rules, KKT checks, duality gap.

For each lam of a decreasing grid (glmnet's recipe, Tibshirani et al. 2012):

0. if the previous solution already has a duality gap <= tol here, keep it;
   otherwise try the path prediction ``b + f (b - b_prev)`` (`predict`);
1. the sequential strong rule keeps feature j in the working set when
   ``|g_j(lam_prev)| >= alpha w1_j (2 lam - lam_prev) * wsum`` (g the
   centred gradient at the previous solution), plus every non-zero;
2. coordinate descent (`_kernels`) solves the working-set problem to a
   duality gap <= tol, cycling on the non-zero coordinates with Anderson
   extrapolation in between;
3. one pass over all features (or nothing in covariance mode) gives the
   full gradient: features violating the KKT condition ``|g_j| <= l1_j``
   join the working set and step 2 repeats; otherwise the full duality gap
   certifies the solution.

With numba the loop over lams runs compiled (`_path_numba`) and hands a
lam that stalls for ``_CHUNK`` epochs back to `solve_lam` here. Single fits
add a final "polish": with the support and signs known, the optimum solves a
small linear system exactly, so estimators return the solution to round-off
and not just to the gap tolerance.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from sklearn.exceptions import ConvergenceWarning

from . import _kernels
from ._cd_numpy import _dual_terms, gap_terms
from ._problem import LSProblem

# glmnet computes lam_max for ridge-like alphas with alpha = 1e-3 (no finite lam_max at 0).
ALPHA_FLOOR = 1e-3
_POLISH_MAX_WORK = 2e9  # n * |A|^2 flops allowed for the exact active-set solve
_CHUNK = 100  # epochs before a stalled working-set solve tries the exact polish


@dataclass
class PathResult:
    """Solutions along a lam grid: ``coefs`` (p, L), gaps on the objective's scale."""

    lams: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    gaps: np.ndarray
    n_iters: np.ndarray


def lam_max(prob: LSProblem, alpha: float, w1: np.ndarray, positive: bool) -> float:
    """Smallest lam at which every penalised coefficient is zero.

    ``max_j |X~_j^T W r0| / (wsum * alpha * w1_j)`` over penalised features,
    where ``r0`` is the residual after fitting the unpenalised features
    (``penalty_factor`` 0) by least squares, as glmnet does (``r0 = zc`` when
    there are none); for alpha < 1e-3 glmnet's floor alpha = 1e-3 is used.
    """
    a = max(alpha, ALPHA_FLOOR)
    free = (w1 == 0) & (prob.H > 0)
    q = prob.q
    if free.any():  # glmnet fits the unpenalised features first: lam_max is taken there
        U = np.flatnonzero(free)
        GU = cross_products(prob, U)
        c = _solve_free(GU[U], q[U])
        q = q - GU @ c
    g = q if positive else np.abs(q)
    pen = (w1 > 0) & (prob.H > 0)
    if not pen.any():
        return 1.0
    # 1e-9 above the exact value, so that round-off in the kernels' own dot products
    # cannot let the first feature in at lam_max itself
    lm = float(np.max(g[pen] / w1[pen])) / (prob.wsum * a) * (1.0 + 1e-9)
    return lm if lm > 0 else 1.0


def lam_grid(lmax: float, n_lams: int, eps: float) -> np.ndarray:
    """Geometric grid from lam_max down to eps * lam_max (n_lams points)."""
    return np.geomspace(lmax, lmax * eps, n_lams) if n_lams > 1 else np.array([lmax])


class _State:
    """Coefficients and residual (or gradient, in covariance mode) of the current fit."""

    def __init__(self, prob: LSProblem, b0: np.ndarray | None):
        self.b = np.zeros(prob.p) if b0 is None else np.array(b0, dtype=np.float64)
        self.st = np.zeros(1)
        self.g_ready = True  # g matches (b, r); False after a path prediction
        if prob.kind == "gram":
            self.g = prob.q - prob.G @ self.b
            self.r = None
        else:
            self.r = prob.zc.copy()
            if b0 is not None and np.any(self.b):
                self.r -= prob.matvec(self.b)  # = zc - X~ b; kept with s = 0
            self.g = prob.grad(self.r, 0.0)

    def rr_zr(self, prob: LSProblem) -> tuple[float, float]:
        """(||r||_W^2, zc^T W r) of the current residual."""
        if prob.kind == "gram":
            bq = float(self.b @ prob.q)
            return prob.zz - bq - float(self.b @ self.g), prob.zz - bq
        rs = self.r + self.st[0]
        wr = rs if prob.w.shape[0] == 0 else prob.w * rs
        return float(rs @ wr), float(prob.zc @ wr)


def cross_products(prob: LSProblem, U: np.ndarray) -> np.ndarray:
    """``X~^T W X~[:, U]`` (p, |U|)."""
    if prob.kind == "gram":
        return prob.G[:, U]
    XU = prob.columns(U)  # centred: X~^T W v = X^T W v for these columns
    return np.column_stack([prob.grad(XU[:, k], 0.0) for k in range(U.shape[0])])


def _solve_free(GUU: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of the free features (lstsq: collinear ones are fine)."""
    return np.linalg.lstsq(GUU, rhs, rcond=None)[0]


def free_features(b, l1, l2, usable, positive) -> np.ndarray:
    """Features with no penalty at all: their KKT condition is gradient = 0.

    Under ``positive`` only those away from the bound b = 0 are free.
    """
    free = usable & (l1 == 0) & (l2 == 0)
    if positive:
        free &= b > 0
    return np.flatnonzero(free)


def _full_gap(prob, state, l1, l2, positive, form_b, usable) -> float:
    """Duality gap over all usable features, exact with unpenalised features.

    An unpenalised feature's dual constraint is ``X~_j^T W theta = 0``; the
    scaled residual meets it only once that feature is fitted, so a gap from
    the raw residual can pass (or turn negative) while it is not. The dual
    point is therefore built from the residual projected off the free
    columns, ``r~ = r - X~_U c`` with ``c = (X~_U^T W X~_U)^+ X~_U^T W r``,
    which is always feasible for them; the primal keeps ``r``. Then::

        gap = (||r||^2 + sum l2 b^2)/2 + sum l1|b| - sig zc.r~ + sig^2 (||r~||^2 + sum l2 b^2)/2

    (formulation A) and the matching change of formulation B, both equal to
    `gap_terms` when the free features are fitted (``r~ = r``).
    """
    rr, zr = state.rr_zr(prob)
    b = state.b
    U = free_features(b, l1, l2, usable, positive)
    g = state.g
    if U.shape[0] == 0:
        terms = _dual_terms(g[usable], b[usable], l1[usable], l2[usable], positive, form_b)
        return gap_terms(rr, zr, *terms, form_b)
    GU = cross_products(prob, U)
    c = _solve_free(GU[U], g[U])
    rrt, zrt, gt = rr - float(c @ g[U]), zr - float(c @ prob.q[U]), g - GU @ c
    dn, l1n, l2n, pen_b = _dual_terms(gt[usable], b[usable], l1[usable], l2[usable], positive,
                                      form_b)
    if form_b:
        return 0.5 * (rr + l2n + rrt) + l1n - zrt + pen_b
    sig = 1.0 if dn <= 1.0 else 1.0 / dn
    return 0.5 * (rr + l2n) + l1n - sig * zrt + 0.5 * sig * sig * (rrt + l2n)


def _violators(state, l1, ws_mask, usable, positive, limit) -> np.ndarray:
    g = state.g if positive else np.abs(state.g)
    viol = np.flatnonzero(usable & ~ws_mask & (g > l1 * (1 + 1e-12)))
    if viol.shape[0] > limit:  # keep the working set small: the worst offenders first
        ratio = g[viol] / np.maximum(l1[viol], 1e-300)
        viol = viol[np.argsort(-ratio)[:limit]]
    return viol


def _run_kernel(prob, state, ws, l1, l2, positive, form_b, max_epochs, tol_abs):
    K = _kernels.kernels()
    if prob.kind == "gram":
        return K.cd_gram(prob.G, prob.q, prob.zz, state.g, state.b, ws, l1, l2, positive,
                         form_b, max_epochs, tol_abs)
    g_ws = state.g[ws]  # when current, the kernel skips its first pass
    out = K.cd_residual(prob.flat, prob.n, prob.data, prob.indices, prob.indptr, prob.sparse,
                        prob.w, prob.wsum, prob.zc, state.r, state.st, state.b, ws, l1, l2,
                        prob.H, prob.m, positive, form_b, max_epochs, tol_abs, g_ws,
                        state.g_ready)
    state.g = prob.grad(state.r, state.st[0])  # the KKT pass over all features
    state.g_ready = True
    return out


def predict(prob, state, b_prev, f, l1, l2, usable) -> bool:
    """Path prediction ``b + f (b - b_prev)`` on the support, kept if the objective drops.

    Between knots the lasso path is linear in lam (the elastic net's is
    smooth), so extrapolating from the last two solutions is a better warm
    start than the last one alone. Signs that would flip become zeros.
    """
    b = state.b
    bp = np.where(b != 0, b + f * (b - b_prev), 0.0)
    bp[(bp > 0) != (b > 0)] = 0.0
    bp[~usable] = 0.0
    idx = np.flatnonzero(bp != b)
    if idx.shape[0] == 0:
        return False
    d = bp[idx] - b[idx]
    r = state.r - prob.columns(idx) @ d  # columns are centred: the offset s is unchanged
    rs_old, rs_new = state.r + state.st[0], r + state.st[0]
    w = prob.w if prob.w.shape[0] else 1.0

    def objective(rs, bb):
        return 0.5 * float(rs @ (w * rs)) + float(l1 @ np.abs(bb) + 0.5 * l2 @ (bb * bb))

    if objective(rs_new, bp) >= objective(rs_old, b):
        return False
    state.b, state.r, state.g_ready = bp, r, False
    return True


def solve_lam(prob, state, l1, l2, strong_l1, positive, form_b, tol_abs, max_iter, usable,
              prediction=None):
    """Solve one lam from ``state`` (in place). Returns (gap, epochs).

    ``prediction = (b_prev, f)`` enables the path prediction (`predict`).
    """
    g = state.g if positive else np.abs(state.g)
    ws_mask = usable & ((state.b != 0) | (l1 == 0) | (g >= strong_l1))
    epochs = 0
    gap = _full_gap(prob, state, l1, l2, positive, form_b, usable)
    if gap <= tol_abs:  # the previous solution is already good enough here
        return gap, 0
    if prediction is not None and prob.kind != "gram" and not positive:
        predict(prob, state, prediction[0], prediction[1], l1, l2, usable)
    tol_k = tol_abs
    chunk = _CHUNK
    while True:
        ws = np.flatnonzero(ws_mask).astype(np.int64)
        budget = min(chunk, max_iter - epochs)
        ep, _ = _run_kernel(prob, state, ws, l1, l2, positive, form_b, budget, tol_k)
        epochs += int(ep)
        gap = _full_gap(prob, state, l1, l2, positive, form_b, usable)
        if gap <= tol_abs or epochs >= max_iter:
            return gap, epochs
        viol = _violators(state, l1, ws_mask, usable, positive, max(100, ws.shape[0]))
        if viol.shape[0] == 0 and ep >= budget:
            # coordinate descent is crawling (correlated features): with the support
            # settled, one exact solve on it usually finishes the job
            gap = polish(prob, state, l1, l2, positive, form_b, usable, gap)
            if gap <= tol_abs:
                return gap, epochs
            chunk *= 2
        elif viol.shape[0] == 0:
            # the kernel's gap met tol only up to round-off: ask for more; a kernel that
            # did no epoch at all has a working-set gap that cannot see what is left
            # (free features' dual constraint): make it run its budget
            tol_k = -1.0 if ep == 0 else tol_k * 0.5
        ws_mask[viol] = True


def polish(prob: LSProblem, state: _State, l1, l2, positive, form_b, usable, gap) -> float:
    """Solve the optimality system on the support exactly; keep it if it is better.

    With support A and signs s_A fixed, the KKT conditions are linear:
    ``(X~_A^T W X~_A + diag(l2_A)) b_A = X~_A^T W zc - l1_A s_A``.
    The candidate is kept only if it keeps the signs and its duality gap
    (which also checks the features outside A) is not larger.
    """
    A = np.flatnonzero(usable & ((state.b != 0) | (l1 == 0)))
    if A.shape[0] == 0 or prob.n * A.shape[0] ** 2 > _POLISH_MAX_WORK:
        return gap
    if prob.kind == "gram":
        M = prob.G[np.ix_(A, A)].copy()
    else:
        XA = prob.columns(A)
        XAw = XA if prob.w.shape[0] == 0 else XA * prob.w[:, None]
        M = XA.T @ XAw
    M[np.diag_indices_from(M)] += l2[A]
    rhs = prob.q[A] - l1[A] * np.sign(state.b[A])
    try:
        with warnings.catch_warnings():  # an ill-conditioned M is caught by the gap test below
            warnings.simplefilter("ignore", sla.LinAlgWarning)
            bA = sla.solve(M, rhs, assume_a="pos", check_finite=False)
    except (sla.LinAlgError, ValueError):
        return gap
    if not np.all(np.isfinite(bA)):
        return gap
    pen = l1[A] > 0
    if np.any(np.sign(bA[pen]) != np.sign(state.b[A][pen])) or (positive and np.any(bA < 0)):
        return gap
    trial = _State.__new__(_State)
    trial.b = np.zeros(prob.p)
    trial.b[A] = bA
    trial.st = np.zeros(1)
    trial.g_ready = True
    if prob.kind == "gram":
        trial.r = None
        trial.g = prob.q - prob.G[:, A] @ bA
    else:
        trial.r = prob.zc - XA @ bA
        trial.g = prob.grad(trial.r, 0.0)
    new_gap = _full_gap(prob, trial, l1, l2, positive, form_b, usable)
    if new_gap <= gap:
        state.b, state.r, state.g, state.st = trial.b, trial.r, trial.g, trial.st
        return new_gap
    return gap


def _run_path_driver(drv, prob, state, lams, lam_prev, l1u, l2u, positive, form_b, tol_abs,
                     chunk, coefs, gaps, n_iters, start) -> int:
    lams = np.ascontiguousarray(lams, dtype=np.float64)
    if prob.kind == "gram":
        return int(drv.path_gram(prob.G, prob.q, prob.zz, state.g, state.b, lams, l1u, l2u,
                                 positive, form_b, tol_abs, chunk, coefs, gaps, n_iters, start))
    return int(drv.path_residual(
        prob.flat, prob.n, prob.data, prob.indices, prob.indptr, prob.sparse, prob.w,
        prob.wsum, prob.zc, state.r, state.st, state.b, state.g, prob.H, prob.m, lams,
        -1.0 if lam_prev is None else float(lam_prev), l1u, l2u, positive, form_b, tol_abs,
        chunk, coefs, gaps, n_iters, start))


def solve_path(
    prob: LSProblem,
    lams: np.ndarray,
    alpha: float,
    w1: np.ndarray,
    w2: np.ndarray,
    *,
    positive: bool = False,
    tol: float = 1e-4,
    max_iter: int = 1000,
    coef_init: np.ndarray | None = None,
    lam_prev: float | None = None,
    do_polish: bool = False,
    warn: bool = True,
) -> PathResult:
    """Elastic net along ``lams`` (decreasing), warm-started from ``coef_init``.

    Minimises ``1/(2 wsum) ||zc - X~ b||_W^2 + lam (alpha w1.|b| + (1-alpha)/2 w2.b^2)``
    for each lam; stops each at a duality gap <= ``tol * zz`` (scikit-learn's
    criterion). ``lam_prev`` is the lam the warm start solved, for the strong
    rule; None starts from a small working set grown by the KKT check.
    """
    state = _State(prob, coef_init)
    usable = prob.H > 0
    state.b[~usable] = 0.0
    form_b = alpha == 0.0
    tol_abs = max(tol * prob.zz, 1e-300)
    L = lams.shape[0]
    coefs = np.empty((prob.p, L))
    gaps = np.empty(L)
    n_iters = np.zeros(L, dtype=np.int64)
    unconverged = []
    l1u, l2u = prob.wsum * alpha * w1, prob.wsum * (1.0 - alpha) * w2
    # the compiled driver's gap has no free-feature term: unpenalised features take the
    # Python loop, whose `_full_gap` is exact for them
    has_free = bool(np.any(usable & (l1u == 0) & (l2u == 0)))
    drv = None if do_polish or has_free else _kernels.path_driver()
    chunk = min(_CHUNK, max_iter)
    k = 0
    while k < L:
        done = 0
        if drv is not None:  # compiled loop over lams; stops early at a stalled lam
            k_new = _run_path_driver(drv, prob, state, lams, lam_prev, l1u, l2u, positive,
                                     form_b, tol_abs, chunk, coefs, gaps, n_iters, k)
            if k_new > k:
                lam_prev = float(lams[k_new - 1])
            k = k_new
            if k >= L:
                break
            done = int(n_iters[k])
        lam = float(lams[k])
        l1, l2 = lam * l1u, lam * l2u
        if lam_prev is None:  # no previous solution: grow the working set from the KKT check
            strong = np.full(prob.p, np.inf)
        else:
            strong = l1u * (2.0 * lam - lam_prev)
        pred = None
        if k >= 2 and done == 0 and lams[k - 2] > lams[k - 1]:  # warm start = solution k-1
            pred = (coefs[:, k - 2], (lam - lams[k - 1]) / (lams[k - 1] - lams[k - 2]))
        gap, ep = solve_lam(prob, state, l1, l2, strong, positive, form_b, tol_abs,
                            max(max_iter - done, 1), usable, pred)
        if do_polish:
            gap = polish(prob, state, l1, l2, positive, form_b, usable, gap)
        coefs[:, k] = state.b
        gaps[k] = gap
        n_iters[k] = done + ep
        lam_prev = lam
        k += 1
    for k in np.flatnonzero(gaps > tol_abs):
        unconverged.append((float(lams[k]), float(gaps[k])))
    gaps = gaps / prob.wsum
    if unconverged and warn:
        lam, gap = unconverged[0]
        warnings.warn(
            f"coordinate descent did not converge for {len(unconverged)} of {L} lams "
            f"(first lam={lam:.3g}: duality gap {gap / prob.wsum:.3g} > tolerance "
            f"{tol_abs / prob.wsum:.3g}); increase max_iter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )
    intercepts = prob.y_mean - prob.x_mean @ coefs
    return PathResult(np.asarray(lams, float), coefs, intercepts, gaps, n_iters)
