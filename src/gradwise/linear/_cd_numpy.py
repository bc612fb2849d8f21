"""Coordinate-descent kernels in plain numpy: the readable reference path.

`_cd_numba` compiles the same algorithm with explicit loops; `_kernels`
picks one. Both solve, over the working set ``ws`` only::

    min_b  1/2 sum_i w_i r_i^2 + sum_j l1_j |b_j| + l2_j / 2 b_j^2,
    r = zc - (X - 1 m^T) b                       (b_j >= 0 if positive)

``w`` are sample weights (an empty array means all ones), ``m`` the weighted
column means (zeros when X is centred already or there is no intercept),
``zc`` the weighted-centred response. The kernels store ``r`` as
``r_raw + s``, ``s = m . b``: an update of b_j changes ``r_raw`` only on the
non-zeros of column j and ``s`` by a scalar, so sparse X is never densified.
Because the intercept is optimal at every step, ``sum_i w_i r_i = 0`` and
the centred gradient is ``X_j^T W r_raw + s * wsum * m_j``.

The coordinate update is the exact minimiser along b_j (Friedman, Hastie and
Tibshirani 2010, eq. 5)::

    b_j <- S(g_j + H_j b_j, l1_j) / (H_j + l2_j),   S(u, t) = sign(u)(|u| - t)_+

with ``H_j = sum_i w_i (X_ij - m_j)^2``.
"""

from __future__ import annotations

import numpy as np


def _col(j, X, n, data, indices, indptr, sparse):
    """Column j as (values, row indices or None); dense X is column-major, flattened."""
    if sparse:
        a, e = indptr[j], indptr[j + 1]
        return data[a:e], indices[a:e]
    return X[j * n:(j + 1) * n], None


def _col_dot(j, X, n, data, indices, indptr, sparse, w, r):
    v, rows = _col(j, X, n, data, indices, indptr, sparse)
    rv = r if rows is None else r[rows]
    if w.shape[0]:
        rv = rv * (w if rows is None else w[rows])
    return float(v @ rv)


def _col_axpy(j, X, n, data, indices, indptr, sparse, delta, r):
    v, rows = _col(j, X, n, data, indices, indptr, sparse)
    if rows is None:
        r -= delta * v
    else:
        r[rows] -= delta * v


def _prox(u, l1, denom, positive):
    """argmin_t denom/2 t^2 - u t + l1 |t| (t >= 0 if positive)."""
    if positive:
        return max(u - l1, 0.0) / denom
    return np.sign(u) * max(abs(u) - l1, 0.0) / denom


def gap_terms(rr, zr, dn, l1n, l2n, pen_b, form_b):
    """Duality gap of the working-set problem.

    Formulation A (any l1 > 0): the elastic net is a lasso on X stacked over
    diag(sqrt(l2)); the dual point is the residual scaled by
    ``sig = min(1, 1 / dn)``, ``dn = max_j |g_j - l2_j b_j| / l1_j``, giving::

        gap = (1 + sig^2)/2 (||r||^2 + sum l2 b^2) - sig z.r + sum l1 |b|

    Formulation B (ridge, l1 = 0): the dual of a strongly convex penalty
    needs no scaling (Duenner et al. 2016, sec. 5.2.3)::

        gap = ||r||^2 - z.r + sum l1|b| + sum l2 b^2 / 2
              + sum_j (|g_j| - l1_j)_+^2 / (2 l2_j)

    Both are the forms scikit-learn uses, so gaps compare one to one.
    """
    if form_b:
        return rr - zr + l1n + 0.5 * l2n + pen_b
    sig = 1.0 if dn <= 1.0 else 1.0 / dn
    return 0.5 * (1.0 + sig * sig) * (rr + l2n) - sig * zr + l1n


def _dual_terms(g, bw, l1w, l2w, positive, form_b):
    """(dn, l1n, l2n, pen_b) of `gap_terms` from gradients on a set of features."""
    l1n = float(l1w @ np.abs(bw))
    l2n = float(l2w @ (bw * bw))
    if form_b:
        v = (g if positive else np.abs(g)) - l1w
        pos = (l2w > 0) & (v > 0)
        return 0.0, l1n, l2n, float(0.5 * np.sum(v[pos] ** 2 / l2w[pos]))
    v = g - l2w * bw
    v = v if positive else np.abs(v)
    pen = l1w > 0
    dn = float(np.max(v[pen] / l1w[pen])) if pen.any() else 0.0
    return dn, l1n, l2n, 0.0


def _gap_ws(X, n, data, indices, indptr, sparse, w, wsum, zc, r, s, b, ws, l1, l2, m,
            positive, form_b, g_out):
    rs = r + s
    wr = rs if w.shape[0] == 0 else w * rs
    rr = float(rs @ wr)
    zr = float(zc @ wr)
    for k, j in enumerate(ws):
        g_out[k] = _col_dot(j, X, n, data, indices, indptr, sparse, w, r) + s * wsum * m[j]
    terms = _dual_terms(g_out, b[ws], l1[ws], l2[ws], positive, form_b)
    return gap_terms(rr, zr, *terms, form_b)


def _sweep(X, n, data, indices, indptr, sparse, w, wsum, r, st, b, idx, nidx, l1, l2, H, m,
           positive):
    dmax = 0.0
    s = st[0]
    for j in idx[:nidx]:
        hj = H[j]
        if hj <= 0.0:
            continue
        bj = b[j]
        g = _col_dot(j, X, n, data, indices, indptr, sparse, w, r) + s * wsum * m[j]
        new = _prox(g + hj * bj, l1[j], hj + l2[j], positive)
        d = new - bj
        if d != 0.0:
            _col_axpy(j, X, n, data, indices, indptr, sparse, d, r)
            s += d * m[j]
            b[j] = new
            dmax = max(dmax, (hj + l2[j]) * d * d)
    st[0] = s
    return dmax


def _run(sweep_all, sweep_active, gap_fn, b, ws, max_epochs, tol):
    """Shared schedule: sweep ws, check the gap when sweeps stall, cycle on non-zeros."""
    epochs, gap, thr = 0, np.inf, tol
    while epochs < max_epochs:
        dmax = sweep_all()
        epochs += 1
        if dmax <= thr or epochs % 10 == 0 or epochs >= max_epochs:
            gap = gap_fn()
            if gap <= tol:
                break
            thr = min(thr, dmax) * 0.1
        active = ws[b[ws] != 0.0]
        if active.shape[0] < ws.shape[0]:
            while epochs < max_epochs:
                da = sweep_active(active)
                epochs += 1
                if da <= thr:
                    break
    return epochs, gap


def cd_residual(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st, b, ws, l1, l2, H, m,
                positive, form_b, max_epochs, tol, g_ws):
    """Coordinate descent on the working set ``ws`` with active-set cycling.

    Arguments: X dense (n, p) as its column-major ravel with ``n`` rows, or
    CSC arrays (data, indices, indptr) with ``sparse=True``; ``r`` (n,) and ``st = [s]`` the residual
    (updated in place); ``b`` (p,) coefficients (in place); ``H`` (p,)
    curvatures; ``form_b`` chooses the ridge form of the gap. ``g_ws``
    receives the centred gradient on ``ws`` at the last gap check.
    Returns ``(epochs, gap)``.
    """
    def sweep(idx):
        return _sweep(X, n, data, indices, indptr, sparse, w, wsum, r, st, b, idx, idx.shape[0],
                      l1, l2, H, m, positive)

    def gap():
        return _gap_ws(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st[0], b, ws, l1, l2,
                       m, positive, form_b, g_ws)

    return _run(lambda: sweep(ws), sweep, gap, b, ws, max_epochs, tol)


def _sweep_gram(G, h, b, idx, l1, l2, positive):
    dmax = 0.0
    for j in idx:
        hj = G[j, j]
        if hj <= 0.0:
            continue
        bj = b[j]
        new = _prox(h[j] + hj * bj, l1[j], hj + l2[j], positive)
        d = new - bj
        if d != 0.0:
            h -= d * G[j]
            b[j] = new
            dmax = max(dmax, (hj + l2[j]) * d * d)
    return dmax


def _gap_gram(zz, q, h, b, ws, l1, l2, positive, form_b):
    # With h = q - G b:  ||r||^2 = zz - 2 b.q + b.G.b = zz - b.q - b.h,  z.r = zz - b.q.
    bq = float(b @ q)
    rr = zz - bq - float(b @ h)
    terms = _dual_terms(h[ws], b[ws], l1[ws], l2[ws], positive, form_b)
    return gap_terms(rr, zz - bq, *terms, form_b)


def cd_gram(G, q, zz, h, b, ws, l1, l2, positive, form_b, max_epochs, tol):
    """Covariance-update coordinate descent (glmnet's choice when n >> p).

    ``G`` (p, p) is the centred weighted Gram matrix, ``q = X~^T W zc``,
    ``zz = zc^T W zc`` and ``h = q - G b`` (updated in place: an update of
    b_j costs O(p), not O(n)). Returns ``(epochs, gap)``.
    """
    return _run(lambda: _sweep_gram(G, h, b, ws, l1, l2, positive),
                lambda idx: _sweep_gram(G, h, b, idx, l1, l2, positive),
                lambda: _gap_gram(zz, q, h, b, ws, l1, l2, positive, form_b),
                b, ws, max_epochs, tol)


def grad_dense(X, n, wr, out):
    """out = X^T wr (BLAS gemv) for X column-major, flattened."""
    np.dot(X.reshape((out.shape[0], n)), wr, out=out)
