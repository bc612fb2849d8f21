"""Kernels of the logistic path's Newton steps, one source for the numba and numpy backends.

Loaded twice by `_kernels.load` (``_logistic_cd_numba`` compiled,
``_logistic_cd_numpy`` plain), like `_cd`. They read X where it lies (the
centred column-major dense array, or the CSC arrays), so no Newton step ever
copies columns:

* `col_stats`: for the working set, in one pass over its columns, the
  weighted sums ``sum_i v_i x_ij``, ``sum_i v_i x_ij^2`` (the IRLS curvature)
  and ``sum_i u_i x_ij`` (the gradient of the quadratic model);
* `matvec`: ``X[:, idx] @ d``;
* `cd_newton`: coordinate descent on the weighted quadratic model, stopped
  as glmnet stops it: when no coordinate moves the model by more than
  ``thr`` (``max_j (H_j + l2_j) d_j^2 <= thr``), cycling the non-zeros
  between full passes over the working set (Friedman, Hastie and Tibshirani
  2010, sec. 2.6). The exact coordinate update is `_cd`'s ``_sweep``.
"""

from __future__ import annotations

import numpy as np

from ._kernels import backend_of, decorators, is_jit, load

JIT = is_jit(__name__)
njit, njit_fast = decorators(JIT)

_CD = load("_cd", backend_of(JIT))
_sweep, _cycle_active = _CD._sweep, _CD.cycle_active
_ANDERSON = 5  # iterates per Anderson extrapolation, as in `_cd.cd_residual`

if JIT:
    @njit_fast
    def col_stats(X, n, data, indices, indptr, sparse, idx, v, u, s1, s2, g):
        """For j = idx[k]: s1[k] = sum v x_j, s2[k] = sum v x_j^2, g[k] = sum u x_j."""
        for k in range(idx.shape[0]):
            j = idx[k]
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            if sparse:
                a, e = indptr[j], indptr[j + 1]
                d = data[a:e]
                ix = indices[a:e]
                for t in range(e - a):
                    i = ix[t]
                    x = d[t]
                    vx = v[i] * x
                    a1 += vx
                    a2 += vx * x
                    a3 += u[i] * x
            else:
                col = X[j * n:(j + 1) * n]
                for i in range(n):
                    x = col[i]
                    vx = v[i] * x
                    a1 += vx
                    a2 += vx * x
                    a3 += u[i] * x
            s1[k] = a1
            s2[k] = a2
            g[k] = a3

    @njit
    def matvec(X, n, data, indices, indptr, sparse, idx, d, out):
        """out = X[:, idx] @ d (zeros of d skipped)."""
        for i in range(out.shape[0]):
            out[i] = 0.0
        for k in range(idx.shape[0]):
            dk = d[k]
            if dk == 0.0:
                continue
            j = idx[k]
            if sparse:
                a, e = indptr[j], indptr[j + 1]
                dd = data[a:e]
                ix = indices[a:e]
                for t in range(e - a):
                    out[ix[t]] += dk * dd[t]
            else:
                col = X[j * n:(j + 1) * n]
                for i in range(n):
                    out[i] += dk * col[i]
else:
    def _columns(X, n, data, indices, indptr, sparse, idx):
        if sparse:
            import scipy.sparse as sp

            p = indptr.shape[0] - 1
            return sp.csc_matrix((data, indices, indptr), shape=(n, p))[:, idx]
        return X.reshape((-1, n))[idx].T

    def col_stats(X, n, data, indices, indptr, sparse, idx, v, u, s1, s2, g):
        sub = _columns(X, n, data, indices, indptr, sparse, idx)
        sq = sub.multiply(sub) if sparse else sub * sub
        s1[:] = sub.T @ v
        s2[:] = sq.T @ v
        g[:] = sub.T @ u

    def matvec(X, n, data, indices, indptr, sparse, idx, d, out):
        out[:] = _columns(X, n, data, indices, indptr, sparse, idx) @ d


@njit
def cd_newton(D, r, st, b, ws, l1, l2, positive, thr, max_epochs):
    """glmnet's cycling on the working set ``ws`` until no move exceeds ``thr``; epochs run.

    A full pass over ``ws``, then passes over its non-zeros until their
    largest ``(H_j + l2_j) d_j^2`` is <= thr, then a full pass again; done
    when a full pass moves nothing by more than thr. Every 5 passes over the
    non-zeros an Anderson step extrapolates them (`_cd.cycle_active`,
    kept only if the model's objective drops). ``r``, ``st = [s]`` and ``b``
    are updated in place (the residual is ``r + s``, as in `_cd`).
    """
    K = _ANDERSON
    nws = ws.shape[0]
    active = np.empty(nws, dtype=np.int64)
    hist = np.empty((K + 1, nws))
    r_tmp = np.empty(r.shape[0])
    b_tmp = np.empty(nws)
    epochs = 0
    while epochs < max_epochs:
        dmax = _sweep(D, r, st, b, ws, nws, l1, l2, positive)
        epochs += 1
        if dmax <= thr:
            break
        na = 0
        for k in range(nws):
            j = ws[k]
            if b[j] != 0.0:
                active[na] = j
                na += 1
        epochs = _cycle_active(D, r, st, b, active, na, l1, l2, positive, thr, epochs, max_epochs,
                               hist, r_tmp, b_tmp)
    return epochs
