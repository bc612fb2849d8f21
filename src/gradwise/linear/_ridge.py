"""Ridge in closed form: Cholesky when p <= n, SVD when p > n, one SVD for a path.

With ``c = wsum * lam`` and per-feature L2 weights ``w2`` (penalty factor,
times sd^2 when standardising), the ridge solution solves::

    (X~^T W X~ + c diag(w2)) b = X~^T W zc

Scaling the columns by ``1/sqrt(w2)`` makes the penalty uniform; with the
thin SVD ``W^{1/2} X~ diag(w2)^{-1/2} = U S V^T`` every lam costs one
matrix-vector product::

    b(lam) = diag(w2)^{-1/2} V diag(s / (s^2 + c)) U^T W^{1/2} zc

(Hoerl and Kennard 1970; the one-SVD path is what RidgeCV-style searches use.)
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ._problem import LSProblem


def _scaled_design(prob: LSProblem, cols: np.ndarray, d: np.ndarray) -> np.ndarray:
    """W^{1/2} X~[:, cols] / sqrt(d) as a dense array (residual modes)."""
    Xs = prob.columns(cols) if prob.kind == "sparse" else prob.X[:, cols]
    Xs = Xs / np.sqrt(d)
    if prob.w.shape[0]:
        Xs = Xs * np.sqrt(prob.w)[:, None]
    return Xs


def _gram_block(prob: LSProblem, cols: np.ndarray) -> np.ndarray:
    """X~^T W X~ restricted to ``cols``."""
    if prob.kind == "gram":
        return prob.G[np.ix_(cols, cols)]
    if prob.kind == "sparse":
        csc = sp.csc_matrix((prob.data, prob.indices, prob.indptr), shape=(prob.n, prob.p))
        sub = csc[:, cols]
        wsub = sub if prob.w.shape[0] == 0 else sp.csc_matrix(sub.multiply(prob.w[:, None]))
        mc = prob.m[cols]
        return (sub.T @ wsub).toarray() - prob.wsum * np.outer(mc, mc)
    Xa = prob.X[:, cols]
    Xw = Xa if prob.w.shape[0] == 0 else Xa * prob.w[:, None]
    return Xa.T @ Xw


def ridge_solve(prob: LSProblem, lam: float, w2: np.ndarray) -> np.ndarray:
    """Coefficients (p,) of the ridge problem at one lam (closed form)."""
    b = np.zeros(prob.p)
    cols = np.flatnonzero(prob.H > 0)
    if cols.shape[0] == 0:
        return b
    c = prob.wsum * lam
    d = w2[cols]
    if c == 0.0 and prob.kind != "gram":  # least squares: the minimum-norm solution
        zw = prob.zc if prob.w.shape[0] == 0 else prob.zc * np.sqrt(prob.w)
        b[cols] = sla.lstsq(_scaled_design(prob, cols, np.ones(cols.shape[0])), zw)[0]
        return b
    if prob.kind != "gram" and cols.shape[0] > prob.n and np.all(d > 0):
        # Dual form: (K + I) a = W^{1/2} zc with K = Xs Xs^T (n x n), b = Xs^T a / sqrt(d).
        Xs = _scaled_design(prob, cols, d)
        zw = prob.zc if prob.w.shape[0] == 0 else prob.zc * np.sqrt(prob.w)
        K = Xs @ Xs.T
        K[np.diag_indices_from(K)] += c
        a = sla.solve(K, zw, assume_a="pos")
        b[cols] = (Xs.T @ a) / np.sqrt(d)
        return b
    M = _gram_block(prob, cols).copy()
    M[np.diag_indices_from(M)] += c * d
    try:
        b[cols] = sla.solve(M, prob.q[cols], assume_a="pos")
    except sla.LinAlgError:  # unpenalised features that are collinear: least squares
        b[cols] = sla.lstsq(M, prob.q[cols])[0]
    return b


def ridge_path(prob: LSProblem, lams: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Coefficients (p, L) for every lam from one decomposition."""
    L = lams.shape[0]
    cols = np.flatnonzero(prob.H > 0)
    out = np.zeros((prob.p, L))
    if cols.shape[0] == 0:
        return out
    d = w2[cols]
    if np.any(d <= 0):  # unpenalised features: no uniform rescaling, solve per lam
        for k, lam in enumerate(lams):
            out[:, k] = ridge_solve(prob, float(lam), w2)
        return out
    c = prob.wsum * np.asarray(lams, dtype=np.float64)
    sd = np.sqrt(d)
    if prob.kind != "gram" and cols.shape[0] > prob.n:
        Xs = _scaled_design(prob, cols, d)
        zw = prob.zc if prob.w.shape[0] == 0 else prob.zc * np.sqrt(prob.w)
        U, s, Vt = sla.svd(Xs, full_matrices=False, check_finite=False)
        uz = U.T @ zw
        out[cols] = (Vt.T / sd[:, None]) @ ((s * uz)[:, None] / (s[:, None] ** 2 + c[None, :]))
        return out
    Gs = _gram_block(prob, cols) / np.outer(sd, sd)
    ev, V = sla.eigh(Gs, check_finite=False)
    ev = np.maximum(ev, 0.0)
    t = V.T @ (prob.q[cols] / sd)
    out[cols] = (V / sd[:, None]) @ (t[:, None] / (ev[:, None] + c[None, :]))
    return out
