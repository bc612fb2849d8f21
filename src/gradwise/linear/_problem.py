"""Least-squares data prepared once for the solvers: centring, weights, scales, Gram.

A `LSProblem` holds everything the coordinate-descent kernels need for::

    1/2 sum_i w_i (zc_i - (X~ b)_i)^2,   X~ = X - 1 m^T,   zc = y - ybar_w

Dense X is copied once into a centred Fortran-ordered float64 array (the
kernels read columns). Sparse X stays sparse: its centring is implicit
(``m`` is passed to the kernels, see `_cd`). When n >> p the problem
switches to covariance mode: only ``G = X~^T W X~`` and ``q = X~^T W zc`` are
kept and every coordinate update costs O(p) (glmnet's covariance updates).

Standardisation is not a copy either: fitting on ``X~ / sd`` and dividing
the coefficients by ``sd`` is the same as fitting on ``X~`` with the L1
weight of feature j multiplied by ``sd_j`` and its L2 weight by ``sd_j^2``,
which is how `penalty_weights` folds it in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import _kernels
from ._base import scaled_weights

_EMPTY_F = np.empty(0, dtype=np.float64)
_EMPTY_I = np.empty(0, dtype=np.int64)
_EMPTY_2D = np.empty((0, 0), dtype=np.float64, order="F")

# Covariance mode needs n > p and a p x p matrix that stays cheap to hold.
GRAM_MAX_FEATURES = 2000


@dataclass
class LSProblem:
    """A weighted, centred least-squares problem (see module docstring)."""

    kind: str  # "dense", "sparse" or "gram"
    n: int
    p: int
    X: np.ndarray  # (n, p) centred, Fortran order; empty unless kind == "dense"
    data: np.ndarray  # CSC arrays, empty unless kind == "sparse"
    indices: np.ndarray
    indptr: np.ndarray
    w: np.ndarray  # (n,) weights, empty when all ones
    wsum: float
    m: np.ndarray  # (p,) means the kernels subtract (zeros once X is centred)
    x_mean: np.ndarray  # (p,) weighted means of the original X (for the intercept)
    y_mean: float
    zc: np.ndarray  # (n,) centred response (empty in gram mode)
    zz: float  # zc^T W zc
    H: np.ndarray  # (p,) weighted centred column sums of squares
    q: np.ndarray  # (p,) X~^T W zc
    G: np.ndarray  # (p, p) X~^T W X~ in gram mode, else empty
    sd: np.ndarray  # (p,) weighted centred (1/n) standard deviations, intercept or not

    @property
    def sparse(self) -> bool:
        return self.kind == "sparse"

    @property
    def flat(self) -> np.ndarray:
        """Dense X as its column-major ravel (a view): one array type for the kernels."""
        return self.X.ravel(order="F")

    def grad(self, r: np.ndarray, s: float) -> np.ndarray:
        """X~^T W (r + s), the centred gradient for the residual ``r + s``."""
        wr = r if self.w.shape[0] == 0 else self.w * r
        if self.kind == "dense":
            out = np.empty(self.p)
            _kernels.kernels().grad_dense(self.flat, self.n, wr, out)
            return out
        csc = sp.csc_matrix((self.data, self.indices, self.indptr), shape=(self.n, self.p))
        return csc.T @ wr + s * self.wsum * self.m

    def matvec(self, b: np.ndarray) -> np.ndarray:
        """X~ b (residual modes only)."""
        if self.kind == "dense":
            return self.X @ b
        csc = sp.csc_matrix((self.data, self.indices, self.indptr), shape=(self.n, self.p))
        return csc @ b - float(self.m @ b)

    def columns(self, idx: np.ndarray) -> np.ndarray:
        """Dense centred columns X~[:, idx] (residual modes only)."""
        if self.kind == "dense":
            return self.X[:, idx]
        csc = sp.csc_matrix((self.data, self.indices, self.indptr), shape=(self.n, self.p))
        return csc[:, idx].toarray() - self.m[idx]

    @property
    def scale(self) -> np.ndarray:
        """Weighted centred standard deviation of each column (glmnet's 1/n form).

        glmnet standardises by this with or without an intercept: without one,
        X itself is not centred (``H`` is then its raw sum of squares) but the
        scale still is ``sqrt(sum_i w_i (x_ij - mean_j)^2 / sum_i w_i)``.
        """
        return self.sd


def centred_sd(H: np.ndarray, wsum: float, offset: np.ndarray) -> np.ndarray:
    """Weighted centred sd from ``H = sum_i w_i (x_ij - c_j)^2`` about any centre ``c``.

    ``offset = mean - c`` (zeros when ``H`` is already centred on the mean).
    """
    return np.sqrt(np.maximum(H / wsum - offset * offset, 0.0))


def _weighted_mean(X: np.ndarray | sp.spmatrix, w: np.ndarray | None) -> np.ndarray:
    if w is None:
        return np.asarray(X.mean(axis=0)).ravel()
    return np.asarray(X.T @ w).ravel() / w.sum()


def make_problem(
    X: Any,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    fit_intercept: bool,
    gram: bool | str = "auto",
) -> LSProblem:
    """Prepare validated float64 ``X`` (dense or sparse) and ``y`` (n,) for the solvers.

    Rows with zero weight are dropped: they do not enter the objective, and
    dropping them makes a zero weight exactly equal to removing the row.
    """
    w = None
    if sample_weight is not None:
        keep = sample_weight > 0
        if not keep.all():
            X, y, sample_weight = X[keep], y[keep], sample_weight[keep]
        if not np.all(sample_weight == sample_weight[0]):
            w = np.ascontiguousarray(sample_weight, dtype=np.float64)
    n, p = X.shape
    wsum = float(n if w is None else w.sum())
    y = np.asarray(y, dtype=np.float64)
    raw_mean = _weighted_mean(X, w)
    x_mean = raw_mean if fit_intercept else np.zeros(p)
    y_mean = float(np.average(y, weights=w)) if fit_intercept else 0.0
    zc = np.ascontiguousarray(y - y_mean)
    wz = zc if w is None else w * zc
    zz = float(zc @ wz)
    w_arr = _EMPTY_F if w is None else w
    use_gram = gram is True or (gram == "auto" and n > p and p <= GRAM_MAX_FEATURES)

    if sp.issparse(X):
        csc = sp.csc_matrix(X, dtype=np.float64)
        csc.sum_duplicates()
        wsq = csc.multiply(csc) if w is None else csc.multiply(csc).multiply(w[:, None])
        H = np.asarray(wsq.sum(axis=0)).ravel() - wsum * x_mean**2
        q = np.asarray(csc.T @ wz).ravel()  # sum(wz) = 0, so centring X changes nothing
        const = _constant_columns(H, wsum, x_mean)
        H[const], q[const] = 0.0, 0.0
        if use_gram:
            wx = csc if w is None else sp.csc_matrix(csc.multiply(w[:, None]))
            G = (csc.T @ wx).toarray() - wsum * np.outer(x_mean, x_mean)
            return _gram_problem(n, p, w_arr, wsum, x_mean, y_mean, zz, G, q, raw_mean)
        data = csc.data if csc.data.flags.writeable else csc.data.copy()
        return LSProblem(
            "sparse", n, p, _EMPTY_2D, data, csc.indices.astype(np.int64),
            csc.indptr.astype(np.int64), w_arr, wsum, x_mean.copy(), x_mean, y_mean, zc, zz,
            H, q, _EMPTY_2D, _sd(H, wsum, raw_mean - x_mean, const),
        )

    if fit_intercept:  # centred into a Fortran-ordered copy in one pass
        Xc = np.empty((n, p), dtype=np.float64, order="F")
        np.subtract(X, x_mean, out=Xc)
    else:
        Xc = np.asfortranarray(X, dtype=np.float64)
    if not Xc.flags.writeable:  # numba compiles read-only arrays separately
        Xc = Xc.copy(order="F")
    q = Xc.T @ wz
    if use_gram:
        Xw = Xc if w is None else Xc * np.sqrt(w)[:, None]
        G = Xw.T @ Xw  # numpy dispatches A.T @ A to syrk
        return _gram_problem(n, p, w_arr, wsum, x_mean, y_mean, zz, np.ascontiguousarray(G), q,
                             raw_mean)
    H = np.einsum("ij,ij->j", Xc, Xc) if w is None else np.einsum("ij,ij,i->j", Xc, Xc, w)
    const = _constant_columns(H, wsum, x_mean)
    H[const], q[const] = 0.0, 0.0
    return LSProblem(
        "dense", n, p, Xc, _EMPTY_F, _EMPTY_I, _EMPTY_I, w_arr, wsum, np.zeros(p), x_mean,
        y_mean, zc, zz, H, q, _EMPTY_2D, _sd(H, wsum, raw_mean - x_mean, const),
    )


def _constant_columns(H: np.ndarray, wsum: float, x_mean: np.ndarray) -> np.ndarray:
    """Columns whose centred norm is round-off of their raw norm: constant columns."""
    raw = H + wsum * x_mean**2
    return H <= 1e-12 * raw + 1e-300


def _sd(H: np.ndarray, wsum: float, offset: np.ndarray, const: np.ndarray) -> np.ndarray:
    sd = centred_sd(H, wsum, offset)
    sd[const] = 0.0
    return sd


def _gram_problem(n: int, p: int, w: np.ndarray, wsum: float, x_mean: np.ndarray, y_mean: float,
                  zz: float, G: np.ndarray, q: np.ndarray, raw_mean: np.ndarray) -> LSProblem:
    G = np.ascontiguousarray(G, dtype=np.float64)
    H = np.diag(G).copy()
    const = _constant_columns(H, wsum, x_mean)
    G[const, :] = 0.0
    G[:, const] = 0.0
    H[const] = 0.0
    q[const] = 0.0
    return LSProblem(
        "gram", n, p, _EMPTY_2D, _EMPTY_F, _EMPTY_I, _EMPTY_I, w, wsum, np.zeros(p), x_mean,
        y_mean, _EMPTY_F, zz, H, q, G, _sd(H, wsum, raw_mean - x_mean, const),
    )


def penalty_weights(
    prob: LSProblem, penalty_factor: np.ndarray | None, standardize: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature L1 and L2 weights (w1, w2) of the penalty (`_base.scaled_weights`).

    Constant columns (sd = 0) are dropped when standardising (`drop_constant`);
    their coefficient stays 0.
    """
    if not standardize:
        return scaled_weights(penalty_factor, prob.scale, False)
    drop_constant(prob, prob.scale <= 0)
    return scaled_weights(penalty_factor, prob.scale, True)


def drop_constant(prob: LSProblem, const: np.ndarray) -> None:
    """Leave constant columns out of the fit (in place), as glmnet does when standardising.

    Without an intercept a constant non-zero column has a raw norm but no
    spread; its standardised penalty weight would be 0, so glmnet drops it
    rather than fit it unpenalised. Its coefficient stays 0.
    """
    if not np.any(const & (prob.H > 0)):
        return
    prob.H[const] = 0.0
    prob.q[const] = 0.0
    if prob.kind == "gram":
        prob.G[const, :] = 0.0
        prob.G[:, const] = 0.0


def take_rows(A: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """A[idx], as a view when idx is a contiguous increasing range (KFold's test folds)."""
    idx = np.asarray(idx)
    if idx.shape[0] and idx[-1] - idx[0] + 1 == idx.shape[0] and np.all(np.diff(idx) == 1):
        return A[idx[0]:idx[-1] + 1]
    return A[idx]


def uses_gram(X: np.ndarray | sp.spmatrix, n_train: int) -> bool:
    """Whether `make_problem(..., gram="auto")` picks covariance mode for these sizes."""
    return not sp.issparse(X) and n_train > X.shape[1] and X.shape[1] <= GRAM_MAX_FEATURES


def gram_fold_problems(
    X: np.ndarray, y: np.ndarray, w: np.ndarray | None, fit_intercept: bool,
    folds: Iterable[tuple[np.ndarray, np.ndarray]],
) -> tuple[LSProblem, list[LSProblem], np.ndarray, np.ndarray]:
    """The all-data problem and one per CV fold in covariance mode, from one Gram matrix.

    A training fold's Gram matrix is the full one minus its test rows'
    (glmnet's trick for cross-validation), so the folds cost one pass over
    their test rows instead of one over their training rows. X is centred
    once with the all-data means, which keeps each fold's own correction
    ``W_tr m m^T`` small (no cancellation). Returns ``(full, [fold, ...],
    Xc, mu)`` with ``Xc = X - mu``.
    """
    n, p = X.shape
    ww = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    mu = (ww @ X) / ww.sum() if fit_intercept else np.zeros(p)
    Xc = np.asarray(X - mu if fit_intercept else X, dtype=np.float64)

    def sums(A: np.ndarray, wa: np.ndarray, ya: np.ndarray) -> list[Any]:  # arrays and floats
        Aw = A if w is None else A * np.sqrt(wa)[:, None]
        return [Aw.T @ Aw, A.T @ (wa * ya), A.T @ wa, float(wa @ ya), float(wa @ (ya * ya)),
                float(wa.sum())]

    def build(G: np.ndarray, xty: np.ndarray, sx: np.ndarray, sy: float, syy: float, W: float,
              count: int) -> LSProblem:
        if fit_intercept:
            m, ybar = sx / W, sy / W
            G = G - W * np.outer(m, m)
            q, zz = xty - sx * ybar, syy - W * ybar * ybar
            x_mean, y_mean = mu + m, ybar
            raw = x_mean
        else:
            q, zz, x_mean, y_mean = xty.copy(), syy, np.zeros(p), 0.0
            raw = sx / W
        return _gram_problem(count, p, _EMPTY_F, W, x_mean, y_mean, max(zz, 0.0), G, q, raw)

    total = sums(Xc, ww, y)
    full = build(*total, n)
    folds_out = []
    for tr, te in folds:
        part = sums(take_rows(Xc, te), ww[te], y[te])
        folds_out.append(build(*[a - b for a, b in zip(total, part)], len(tr)))
    return full, folds_out, Xc, mu
