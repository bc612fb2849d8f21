"""Penalised logistic regression by proximal Newton (glmnet's IRLS + coordinate descent).

Binary (y in {0, 1}) and multinomial (K >= 3 classes, one coefficient row
per class, glmnet's symmetric parameterisation) with the objective::

    1/n sum_i sw_i loss_i(b0 + x_i B^T) + lam sum_k (alpha ||B_k||_1 + (1-alpha)/2 ||B_k||^2)

Each outer step takes the quadratic model of the loss at the current fit,
a weighted least-squares problem with weights ``v = sw p (1 - p)`` and the
working response ``eta + (y - p) / (p (1 - p))`` (IRLS), solves its
penalised version with the coordinate-descent kernels on a working set, and
backtracks on the true objective (Armijo). Multinomial models cycle the step
over the classes, each with its own diagonal curvature (glmnet's
"ungrouped" multinomial). The stopping rule is the Fenchel duality gap
(below), tested against ``tol * null deviance``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import xlogy
from sklearn.exceptions import ConvergenceWarning

from . import _kernels
from ._logistic_objective import duality_gap, loss, penalty, probs, recentre
from ._logistic_polish import newton_polish
from ._logistic_step import (
    _NO_FLOAT,
    _NO_INT,
    class_step,
    free_decrement,
    intercept_decrement,
    line_search,
    lkernels,
)

_THR = 1e-4  # inner rule: no coordinate moves the model by > _THR * min(gap, tolerance)
_PREDICT = True  # start each lam from the linear extrapolation of the last two (kept if better)
_THR_MIN = 1e-12  # tightest inner rule, after Newton steps that did not shrink the gap
# a Newton step "hardly helped" when the gap kept more than this share: binary steps
# converge quadratically; multinomial ones cycle over the classes, linearly at best
_SHRINK = {True: 0.25, False: 0.9}


@dataclass
class LogitData:
    """X for the logistic solver: dense centred Fortran array, or raw CSC."""

    X: np.ndarray | sp.csc_matrix
    sparse: bool
    n: int
    p: int
    sw: np.ndarray  # (n,) sample weights (ones when not given)
    x_mean: np.ndarray  # (p,) weighted means subtracted from dense X (zeros for sparse)
    sd: np.ndarray  # (p,) weighted standard deviations (for standardisation)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def arrays(self) -> tuple:
        """(X raveled, n, data, indices, indptr, sparse): what the kernels read, no copy."""
        if "arrays" not in self._cache:
            if self.sparse:
                self._cache["arrays"] = (_NO_FLOAT, self.n, self.X.data, self.X.indices,
                                         self.X.indptr, True)
            else:
                self._cache["arrays"] = (self.X.ravel(order="F"), self.n, _NO_FLOAT, _NO_INT,
                                         _NO_INT, False)
        return self._cache["arrays"]

    def grad(self, v: np.ndarray) -> np.ndarray:
        """X^T v (p,)."""
        if self.sparse:
            if "T" not in self._cache:
                self._cache["T"] = self.X.T.tocsr()
            return np.asarray(self._cache["T"] @ v).ravel()
        out = np.empty(self.p)
        _kernels.kernels().grad_dense(self.arrays[0], self.n, np.ascontiguousarray(v), out)
        return out

    def matvec(self, idx: np.ndarray, d: np.ndarray) -> np.ndarray:
        """X[:, idx] @ d."""
        out = np.zeros(self.n)
        if idx.shape[0]:
            lkernels().matvec(*self.arrays, np.asarray(idx, dtype=np.int64),
                               np.ascontiguousarray(d, dtype=np.float64), out)
        return out

    def col_stats(self, idx: np.ndarray, v: np.ndarray,
                  u: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sum_i v_i X_ij, sum_i v_i X_ij^2, sum_i u_i X_ij) for j in idx, one pass."""
        idx = np.asarray(idx, dtype=np.int64)
        s1, s2, g = np.empty(idx.shape[0]), np.empty(idx.shape[0]), np.empty(idx.shape[0])
        lkernels().col_stats(*self.arrays, idx, v, v if u is None else u, s1, s2, g)
        return s1, s2, g


def make_logit_data(X: np.ndarray | sp.spmatrix, sw: np.ndarray | None, fit_intercept: bool) -> LogitData:
    n, p = X.shape
    w = np.ones(n) if sw is None else sw
    wsum = w.sum()
    if sp.issparse(X):
        X = sp.csc_matrix(X, dtype=np.float64, copy=True)  # own, writeable arrays for numba
        X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
        mean = np.asarray(X.T @ w).ravel() / wsum
        sq = np.asarray(X.multiply(X).T @ w).ravel() / wsum
        var = sq - mean**2  # glmnet's centred sd, with or without an intercept
        return LogitData(X, True, n, p, w, np.zeros(p), np.sqrt(np.maximum(var, 0.0)))
    raw_mean = (X.T @ w) / wsum
    mean = raw_mean if fit_intercept else np.zeros(p)
    Xc = np.array(X - mean if fit_intercept else X, dtype=np.float64, order="F")  # own copy
    # glmnet's centred sd, with or without an intercept (X itself is centred only with one)
    var = np.einsum("ij,ij,i->j", Xc, Xc, w) / wsum - (raw_mean - mean) ** 2
    return LogitData(Xc, False, n, p, w, mean, np.sqrt(np.maximum(var, 0.0)))


@dataclass
class LogitResult:
    coef: np.ndarray  # (K, p) K = 1 for binary
    intercept: np.ndarray  # (K,)
    gap: float  # on the objective's scale (divided by sum of weights)
    n_iter: int
    eta: np.ndarray | None = None  # (n, K) linear scores of the centred problem at the result
    grad: np.ndarray | None = None  # (K, p) X^T sw (Y - P) there: the next lam's first check


def fit_logistic(
    data: LogitData,
    Y: np.ndarray,
    lam: float,
    alpha: float,
    w1: np.ndarray,
    w2: np.ndarray,
    *,
    fit_intercept: bool = True,
    positive: bool = False,
    tol: float = 1e-4,
    max_iter: int = 100,
    coef_init: np.ndarray | None = None,
    intercept_init: np.ndarray | None = None,
    warn: bool = True,
    polish: bool = False,
    eta_init: np.ndarray | None = None,
    grad_init: np.ndarray | None = None,
    predict: tuple | None = None,
) -> LogitResult:
    """Proximal Newton for binary (Y (n, 1) of 0/1) or multinomial (Y (n, K) one-hot).

    ``polish`` finishes with exact Newton steps on the support (`_logistic_polish`).
    ``eta_init`` and ``grad_init`` (a path's previous `LogitResult`'s ``eta`` and
    ``grad``, at ``coef_init``/``intercept_init``) spare the first passes over X.
    ``predict = (coef, intercept, eta, c)``, the lam before that, starts from
    ``init + c (init - predict)`` instead where that has the lower objective.
    """
    binary = Y.shape[1] == 1
    Kc, p = Y.shape[1], data.p
    sw, swsum = data.sw, float(data.sw.sum())
    l1 = swsum * lam * alpha * w1
    l2 = swsum * lam * (1.0 - alpha) * w2
    usable = data.sd > 0
    freq = np.clip((sw @ Y) / swsum, 1e-12, 1 - 1e-12)
    if binary:
        null_b0 = np.log(freq / (1 - freq))
        null_dev = -2.0 * float(swsum * (xlogy(freq, freq) + xlogy(1 - freq, 1 - freq)).sum())
    else:
        null_b0 = np.log(freq) - np.log(freq).mean()
        null_dev = -2.0 * float(swsum * xlogy(freq, freq).sum())
    B = np.zeros((Kc, p)) if coef_init is None else np.array(coef_init, dtype=float)
    b0 = (null_b0 if fit_intercept else np.zeros(Kc)) if intercept_init is None else np.array(
        intercept_init, dtype=float)
    B[:, ~usable] = 0.0
    tol_abs = max(tol * null_dev, 1e-300)

    def eta_of(B_: np.ndarray, b0_: np.ndarray) -> np.ndarray:
        eta = np.empty((data.n, Kc))
        nz = np.flatnonzero(np.any(B_ != 0, axis=0))
        for k in range(Kc):
            eta[:, k] = data.matvec(nz, B_[k, nz]) + b0_[k]
        return eta

    eta = eta_of(B, b0) if eta_init is None else eta_init
    if predict is not None and eta_init is not None:
        # the path's next point, extrapolated linearly in log(lam): B, b0 and eta move
        # together, so eta stays X B + b0; kept only where the objective is lower
        B_p, b0_p, eta_p, c = predict
        B2, b02, eta2 = B + c * (B - B_p), b0 + c * (b0 - b0_p), eta + c * (eta - eta_p)
        if (loss(eta2, Y, sw, binary) + penalty(B2, l1, l2)
                < loss(eta, Y, sw, binary) + penalty(B, l1, l2)):
            B, b0, eta, grad_init = B2, b02, eta2, None
    ws_mask = usable & (np.any(B != 0, axis=0) | (l1 == 0))
    free = np.flatnonzero(usable & (l1 == 0) & (l2 == 0))

    def certificate(eta_: np.ndarray, P_: np.ndarray, B_: np.ndarray, b0_: np.ndarray,
                    V_: np.ndarray | None = None,
                    f_: float | None = None) -> tuple[float, np.ndarray]:
        g, V_ = duality_gap(data, eta_, P_, Y, B_, b0_, l1, l2, positive, binary, V_, f_)
        if free.shape[0] == 0 and not fit_intercept:
            return g, V_
        # the dual point ignores the free features' constraint (and the intercept's,
        # sum theta = 0: the gap holds b0 fixed) until they are fitted, so its gap may
        # even be negative: their own Newton decrements must vanish too
        extra = intercept_decrement(data, P_, Y) if fit_intercept else 0.0
        return max(g, 0.0) + free_decrement(data, P_, V_, free, binary) + extra, V_

    gap, it, stalls = np.inf, 0, 0
    V: np.ndarray | None = None
    f_prev, gap_prev, scale = np.inf, np.inf, _THR
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` reported as n_iter
        P = probs(eta, binary)
        f = loss(eta, Y, sw, binary) + penalty(B, l1, l2)
        gap, V = certificate(eta, P, B, b0, grad_init if it == 1 else None, f)
        if gap > _SHRINK[binary] * gap_prev:
            # a Newton step that hardly helped: coordinate descent stopped early on its
            # per-coordinate rule (slow, correlated coordinates); solve the next one tighter
            scale = max(scale * 1e-2, _THR_MIN)
        gap_prev = gap
        # With saturated probabilities the dual point is a loose certificate (the gap is
        # first order in the KKT residual there): stop when the objective no longer moves
        # even under the tightest inner rule, and leave the rest to the polish.
        still = f_prev - f <= 1e-14 * max(1.0, abs(f)) and scale <= _THR_MIN
        stalls = stalls + 1 if still else 0
        f_prev = f
        if gap <= tol_abs or stalls >= 2:
            break
        Va = V if positive else np.abs(V)
        viol = usable & ~ws_mask & np.any(Va > l1 * (1 + 1e-12), axis=0)
        idx = np.flatnonzero(viol)
        limit = max(100, int(ws_mask.sum()))
        if idx.shape[0] > limit:  # grow the working set gradually, worst violators first
            score = np.max(Va[:, idx], axis=0) / np.maximum(l1[idx], 1e-300)
            idx = idx[np.argsort(-score)[:limit]]
        ws_mask[idx] = True
        ws = np.flatnonzero(ws_mask).astype(np.int64)
        thr = scale * min(gap, tol_abs)
        f_k = f
        for k in range(Kc):
            P = probs(eta, binary) if k else P
            dB, db0, deta = class_step(data, k, eta, P, Y, B, b0, ws, l1, l2, positive,
                                        fit_intercept, thr, 10_000,
                                        None if scale >= _THR else (0.1 * min(gap, null_dev),
                                                                    tol_abs))
            B, b0, eta, f_k = line_search(data, eta, Y, B, b0, k, dB, db0, deta, l1, l2,
                                           binary, (f_k, P))
        if not binary and not positive:
            B, eta = recentre(data, B, eta, l1, l2)
    else:
        P = probs(eta, binary)
        gap, V = certificate(eta, P, B, b0)
    if polish and gap > 0.0:
        def objective(B_: np.ndarray, b0_: np.ndarray) -> float:
            return loss(eta_of(B_, b0_), Y, sw, binary) + penalty(B_, l1, l2)

        B2, b02 = newton_polish(data, Y, B, b0, l1, l2, objective, fit_intercept, binary)
        eta2 = eta_of(B2, b02)
        gap2, _ = certificate(eta2, probs(eta2, binary), B2, b02)
        if gap2 <= gap:
            B, b0, gap, eta, V = B2, b02, gap2, eta2, None
    if gap > tol_abs and warn:
        warnings.warn(
            f"proximal Newton stopped after {it} iterations at duality gap "
            f"{gap / swsum:.3g} > tolerance {tol_abs / swsum:.3g}; increase max_iter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )
    if not binary and fit_intercept:
        shift = b0.mean()  # softmax is unchanged; glmnet and scikit-learn centre them too
        b0, eta = b0 - shift, eta - shift
    return LogitResult(B, b0, max(gap, 0.0) / swsum, it, eta, V)


def nullprobs(data: LogitData, Y: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """Fitted probabilities (n, K) of the intercept-only model."""
    freq = (data.sw @ Y) / data.sw.sum() if fit_intercept else np.full(Y.shape[1], 0.5)
    if Y.shape[1] > 1 and not fit_intercept:
        freq = np.full(Y.shape[1], 1.0 / Y.shape[1])
    return np.broadcast_to(freq, Y.shape)


def logistic_lam_max(data: LogitData, Y: np.ndarray, alpha: float, w1: np.ndarray, positive: bool,
                     fit_intercept: bool) -> float:
    """Smallest lam with every penalised coefficient zero.

    ``max_jk |X_j^T sw (Y_k - p0_k)| / (n alpha w1_j)``, with ``p0`` the fit of
    the intercept and the unpenalised features (``penalty_factor`` 0), which
    glmnet fits first.
    """
    free = (w1 == 0) & (data.sd > 0)
    if free.any():
        # a penalty weight so large that no penalised feature can enter
        res = fit_logistic(data, Y, 1.0, 1.0, np.where(free, 0.0, 1e30),
                           np.zeros(data.p), fit_intercept=fit_intercept, positive=positive,
                           tol=1e-12, warn=False)
        nz = np.flatnonzero(free)
        eta = np.stack([data.matvec(nz, res.coef[k, nz]) for k in range(Y.shape[1])], 1)
        eta = eta + res.intercept  # centred multinomial intercepts: softmax does not mind
        p0 = probs(eta, Y.shape[1] == 1)
    else:
        p0 = nullprobs(data, Y, fit_intercept)
    R = data.sw[:, None] * (Y - p0)
    G = np.stack([data.grad(R[:, k]) for k in range(Y.shape[1])])
    G = G if positive else np.abs(G)
    pen = (w1 > 0) & (data.sd > 0)
    if not pen.any():
        return 1.0
    lm = float(np.max(G[:, pen] / w1[pen])) / (data.sw.sum() * max(alpha, 1e-3))
    return lm if lm > 0 else 1.0


def logistic_path(data: LogitData, Y: np.ndarray, lams: Iterable[float], alpha: float,
                  w1: np.ndarray, w2: np.ndarray, **kw: Any) -> list[LogitResult]:
    """Warm-started fits along decreasing ``lams``."""
    out: list[LogitResult] = []
    coef, b0, eta, grad = None, None, None, None
    prev: tuple | None = None  # (coef, b0, eta, lam) of the lam before the last
    lam_last = np.inf
    for lam in map(float, lams):
        predict = None
        if _PREDICT and prev is not None and eta is not None and lam < lam_last < prev[3]:
            predict = (*prev[:3], np.log(lam_last / lam) / np.log(prev[3] / lam_last))
        res = fit_logistic(data, Y, lam, alpha, w1, w2, coef_init=coef, intercept_init=b0,
                           eta_init=eta, grad_init=grad, predict=predict, **kw)
        if eta is not None:
            prev = (coef, b0, eta, lam_last)
        coef, b0, eta, grad = res.coef.copy(), res.intercept.copy(), res.eta, res.grad
        lam_last = lam
        res.eta = res.grad = None  # the next lam's start only: not kept for the whole path
        out.append(res)
    return out
