"""Elastic-net solver: the path driver around the kernels, polish, lam_max.

The per-lam loop (warm starts, path prediction, strong rules, KKT checks,
duality gap) lives once, in `_cd_path`, compiled with numba or run as
Python (`_kernels`). `solve_path` here hands it the packed problem, and
when a lam stalls for ``_CHUNK`` epochs (strongly correlated features) it
tries the exact "polish" and resumes the loop there with a doubled budget.
Single fits polish every lam: with the support and signs known, the optimum
solves a small linear system exactly, so estimators return the solution to
round-off and not just to the gap tolerance.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from sklearn.exceptions import ConvergenceWarning

from . import _kernels
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


def free_features(b: np.ndarray, l1: np.ndarray, l2: np.ndarray, usable: np.ndarray,
                  positive: bool) -> np.ndarray:
    """Features with no penalty at all: their KKT condition is gradient = 0.

    Under ``positive`` only those away from the bound b = 0 are free.
    """
    free = usable & (l1 == 0) & (l2 == 0)
    if positive:
        free &= b > 0
    return np.flatnonzero(free)


def free_arrays(prob: LSProblem, free: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(GU, free, fpos)`` of the kernels' exact gap: ``GU = X~^T W X~[:, free]`` (p, u),
    ``fpos[j]`` the position of j in ``free`` or -1 (empty when there are none)."""
    free = np.asarray(free, dtype=np.int64)
    if free.shape[0] == 0:
        return np.zeros((prob.p, 0)), free, np.empty(0, dtype=np.int64)
    fpos = np.full(prob.p, -1, dtype=np.int64)
    fpos[free] = np.arange(free.shape[0])
    return np.ascontiguousarray(cross_products(prob, free)), free, fpos


def kernel_data(prob: LSProblem, free: np.ndarray) -> tuple:
    """The problem packed for the kernels: `_kernels.Gram` or `_kernels.Data`."""
    GU, fr, fpos = free_arrays(prob, free)
    if prob.kind == "gram":
        return _kernels.Gram(prob.G, prob.q, prob.zz, prob.H, GU, fr, fpos)
    return _kernels.Data(prob.flat, prob.n, prob.data, prob.indices, prob.indptr, prob.sparse,
                         prob.w, prob.wsum, prob.zc, prob.H, prob.m, prob.q, GU, fr, fpos)


def _full_gap(prob: LSProblem, state: _State, l1: np.ndarray, l2: np.ndarray, positive: bool,
              form_b: bool, usable: np.ndarray, D: tuple | None = None) -> float:
    """Duality gap over all usable features, exact with unpenalised features.

    An unpenalised feature's dual constraint is ``X~_j^T W theta = 0``; the
    scaled residual meets it only once that feature is fitted, so the dual
    point is built from the residual projected off the free columns (see
    `_cd.gap_core`): the gap is then never negative and an unfitted free
    feature cannot pass. ``D``: the packed problem, if already built.
    """
    if D is None:
        D = kernel_data(prob, free_features(state.b, l1, l2, usable, positive))
    rr, zr = state.rr_zr(prob)
    idx = np.flatnonzero(usable).astype(np.int64)
    K = _kernels.kernels()
    return float(K.gap_core(rr, zr, D, state.b, idx, l1, l2, positive, form_b,
                            np.ascontiguousarray(state.g[idx])))


def polish(prob: LSProblem, state: _State, l1: np.ndarray, l2: np.ndarray, positive: bool,
           form_b: bool, usable: np.ndarray, gap: float, D: tuple | None = None) -> float:
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
    new_gap = _full_gap(prob, trial, l1, l2, positive, form_b, usable, D)
    if new_gap <= gap:
        state.b, state.r, state.g, state.st = trial.b, trial.r, trial.g, trial.st
        return new_gap
    return gap


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
    lams = np.ascontiguousarray(lams, dtype=np.float64)
    coefs_t = np.empty((L, prob.p))  # one contiguous row per lam: the kernels write rows
    gaps = np.empty(L)
    n_iters = np.zeros(L, dtype=np.int64)
    unconverged = []
    l1u, l2u = prob.wsum * alpha * w1, prob.wsum * (1.0 - alpha) * w2
    D = kernel_data(prob, np.flatnonzero(usable & (l1u == 0) & (l2u == 0)))
    drv = _kernels.path_driver()
    k, done, chunk = 0, 0, min(_CHUNK, max_iter)
    while k < L:
        stop = k + 1 if do_polish else L
        opts = _kernels.Opts(positive, form_b, tol_abs, max(min(chunk, max_iter - done), 1))
        if prob.kind == "gram":
            k_new = drv.path_gram(D, state.g, state.b, lams, l1u, l2u, opts, coefs_t, gaps,
                                  n_iters, k, stop)
        else:
            k_new = drv.path_residual(D, state.r, state.st, state.b, state.g, lams,
                                      -1.0 if lam_prev is None else float(lam_prev), l1u, l2u,
                                      opts, coefs_t, gaps, n_iters, k, stop)
        k_new = int(k_new)
        stalled = k_new < stop
        last = k_new if stalled else k_new - 1
        if last >= k:
            n_iters[k] += done
        if k_new > k:
            done, chunk = 0, min(_CHUNK, max_iter)
            if stalled:
                lam_prev = float(lams[k_new - 1])
        if not stalled and not do_polish:
            k = k_new
            lam_prev = float(lams[k - 1])
            continue
        lam = float(lams[last])
        l1, l2 = lam * l1u, lam * l2u
        gap = polish(prob, state, l1, l2, positive, form_b, usable, float(gaps[last]), D)
        if stalled and gap > tol_abs and int(n_iters[last]) < max_iter:
            done, chunk = int(n_iters[last]), chunk * 2  # resume this lam, longer budget
            k = last
            continue
        coefs_t[last] = state.b
        gaps[last] = gap
        lam_prev = lam
        k = last + 1
        done, chunk = 0, min(_CHUNK, max_iter)
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
    coefs = coefs_t.T
    intercepts = prob.y_mean - prob.x_mean @ coefs
    return PathResult(np.asarray(lams, float), coefs, intercepts, gaps, n_iters)
