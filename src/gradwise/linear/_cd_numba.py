"""Compiled coordinate-descent kernels (numba), the fast path of `_cd_numpy`.

Both files solve the same working-set problem and are tested equal; see
`_cd_numpy` for the readable reference and the meaning of every argument.

The problem (unnormalised, so that the kernels never divide by n)::

    min_b  1/2 sum_i w_i (z_i - (X b)_i + (m . b))^2
           + sum_j l1_j |b_j| + l2_j / 2 b_j^2        (b_j >= 0 if positive)

over the coordinates in the working set ``ws``. ``m`` holds the weighted
column means: subtracting ``m . b`` centres X without copying it, which keeps
sparse X sparse. The residual is stored as ``r + s`` with ``s = m . b`` so
that a coordinate update touches only the non-zeros of its column.

All compiles are cached on disk (``cache=True``) and the signatures are kept
to one dtype per argument (float64 / int64), so a session compiles each
kernel at most once.
"""

from __future__ import annotations

import numba
import numpy as np

_FAST = {"reassoc", "contract"}  # lets LLVM vectorise the dot-product reductions


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _col_dot(j, X, n, data, indices, indptr, sparse, w, r):
    """sum_i X_ij w_i r_i (w empty: unweighted); dense X is column-major, flattened."""
    acc = 0.0
    if sparse:
        if w.shape[0] == 0:
            for k in range(indptr[j], indptr[j + 1]):
                acc += data[k] * r[indices[k]]
        else:
            for k in range(indptr[j], indptr[j + 1]):
                i = indices[k]
                acc += data[k] * w[i] * r[i]
    else:
        base = j * n
        if w.shape[0] == 0:
            for i in range(n):
                acc += X[base + i] * r[i]
        else:
            for i in range(n):
                acc += X[base + i] * w[i] * r[i]
    return acc


@numba.njit(cache=True, nogil=True)
def _col_axpy(j, X, n, data, indices, indptr, sparse, delta, r):
    """r -= delta * X[:, j]."""
    if sparse:
        for k in range(indptr[j], indptr[j + 1]):
            r[indices[k]] -= delta * data[k]
    else:
        base = j * n
        for i in range(n):
            r[i] -= delta * X[base + i]


@numba.njit(cache=True, nogil=True)
def _prox(u, l1, denom, positive):
    """argmin_t denom/2 t^2 - u t + l1 |t| (t >= 0 if positive)."""
    if positive:
        return max(u - l1, 0.0) / denom
    if u > l1:
        return (u - l1) / denom
    if u < -l1:
        return (u + l1) / denom
    return 0.0


@numba.njit(cache=True, nogil=True)
def _gap(rr, zr, dn, l1n, l2n, pen_b, form_b):
    """Duality gap from the residual norms (formula derived in `_cd_numpy.gap_terms`)."""
    if form_b:
        return rr - zr + l1n + 0.5 * l2n + pen_b
    sig = 1.0 if dn <= 1.0 else 1.0 / dn
    return 0.5 * (1.0 + sig * sig) * (rr + l2n) - sig * zr + l1n


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _gap_ws(X, n, data, indices, indptr, sparse, w, wsum, zc, r, s, b, ws, l1, l2, m,
            positive, form_b, g_out):
    rr = 0.0
    zr = 0.0
    if w.shape[0] == 0:
        for i in range(n):
            ri = r[i] + s
            rr += ri * ri
            zr += zc[i] * ri
    else:
        for i in range(n):
            ri = r[i] + s
            rr += w[i] * ri * ri
            zr += w[i] * zc[i] * ri
    dn = 0.0
    l1n = 0.0
    l2n = 0.0
    pen_b = 0.0
    for k in range(ws.shape[0]):
        j = ws[k]
        g = _col_dot(j, X, n, data, indices, indptr, sparse, w, r) + s * wsum * m[j]
        g_out[k] = g
        bj = b[j]
        l1n += l1[j] * abs(bj)
        l2n += l2[j] * bj * bj
        if form_b:
            if l2[j] > 0.0:
                v = (g if positive else abs(g)) - l1[j]
                if v > 0.0:
                    pen_b += 0.5 * v * v / l2[j]
        elif l1[j] > 0.0:
            v = g - l2[j] * bj
            v = v if positive else abs(v)
            dn = max(dn, v / l1[j])
    return _gap(rr, zr, dn, l1n, l2n, pen_b, form_b)


@numba.njit(cache=True, nogil=True)
def _sweep(X, n, data, indices, indptr, sparse, w, wsum, r, st, b, idx, nidx, l1, l2, H, m,
           positive):
    dmax = 0.0
    s = st[0]
    for k in range(nidx):
        j = idx[k]
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


@numba.njit(cache=True, nogil=True)
def cd_residual(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st, b, ws, l1, l2, H, m,
                positive, form_b, max_epochs, tol, g_ws):
    """Coordinate descent on the working set ``ws`` with active-set cycling.

    Returns ``(epochs, gap)``; ``g_ws`` receives the gradient on ``ws`` at the
    last gap check. Stops when the working-set duality gap is <= tol.
    """
    nws = ws.shape[0]
    active = np.empty(nws, dtype=np.int64)
    epochs = 0
    gap = np.inf
    thr = tol
    while epochs < max_epochs:
        dmax = _sweep(X, n, data, indices, indptr, sparse, w, wsum, r, st, b, ws, nws, l1, l2,
                      H, m, positive)
        epochs += 1
        if dmax <= thr or epochs % 10 == 0 or epochs >= max_epochs:
            gap = _gap_ws(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st[0], b, ws, l1,
                          l2, m, positive, form_b, g_ws)
            if gap <= tol:
                break
            thr = min(thr, dmax) * 0.1
        # cycle on the non-zero coordinates until they settle (glmnet's active set)
        na = 0
        for k in range(nws):
            if b[ws[k]] != 0.0:
                active[na] = ws[k]
                na += 1
        if na < nws:
            while epochs < max_epochs:
                da = _sweep(X, n, data, indices, indptr, sparse, w, wsum, r, st, b, active, na,
                            l1, l2, H, m, positive)
                epochs += 1
                if da <= thr:
                    break
    return epochs, gap


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _gap_gram(zz, q, h, b, ws, l1, l2, positive, form_b):
    # ||r||^2 = zz - 2 b.q + b.G.b = zz - b.q - b.h ;  z.r = zz - b.q  (h = q - G b)
    bq = 0.0
    bh = 0.0
    for j in range(b.shape[0]):
        if b[j] != 0.0:
            bq += b[j] * q[j]
            bh += b[j] * h[j]
    rr = zz - bq - bh
    zr = zz - bq
    dn = 0.0
    l1n = 0.0
    l2n = 0.0
    pen_b = 0.0
    for k in range(ws.shape[0]):
        j = ws[k]
        bj = b[j]
        g = h[j]
        l1n += l1[j] * abs(bj)
        l2n += l2[j] * bj * bj
        if form_b:
            if l2[j] > 0.0:
                v = (g if positive else abs(g)) - l1[j]
                if v > 0.0:
                    pen_b += 0.5 * v * v / l2[j]
        elif l1[j] > 0.0:
            v = g - l2[j] * bj
            v = v if positive else abs(v)
            dn = max(dn, v / l1[j])
    return _gap(rr, zr, dn, l1n, l2n, pen_b, form_b)


@numba.njit(cache=True, nogil=True)
def _sweep_gram(G, h, b, idx, nidx, l1, l2, positive):
    dmax = 0.0
    p = h.shape[0]
    for k in range(nidx):
        j = idx[k]
        hj = G[j, j]
        if hj <= 0.0:
            continue
        bj = b[j]
        new = _prox(h[j] + hj * bj, l1[j], hj + l2[j], positive)
        d = new - bj
        if d != 0.0:
            for i in range(p):
                h[i] -= d * G[j, i]
            b[j] = new
            dmax = max(dmax, (hj + l2[j]) * d * d)
    return dmax


@numba.njit(cache=True, nogil=True)
def cd_gram(G, q, zz, h, b, ws, l1, l2, positive, form_b, max_epochs, tol):
    """Covariance-update coordinate descent: ``h = q - G b`` is kept up to date.

    Every update costs O(p) instead of O(n), glmnet's choice when n >> p.
    Returns ``(epochs, gap)``.
    """
    nws = ws.shape[0]
    active = np.empty(nws, dtype=np.int64)
    epochs = 0
    gap = np.inf
    thr = tol
    while epochs < max_epochs:
        dmax = _sweep_gram(G, h, b, ws, nws, l1, l2, positive)
        epochs += 1
        if dmax <= thr or epochs % 10 == 0 or epochs >= max_epochs:
            gap = _gap_gram(zz, q, h, b, ws, l1, l2, positive, form_b)
            if gap <= tol:
                break
            thr = min(thr, dmax) * 0.1
        na = 0
        for k in range(nws):
            if b[ws[k]] != 0.0:
                active[na] = ws[k]
                na += 1
        if na < nws:
            while epochs < max_epochs:
                da = _sweep_gram(G, h, b, active, na, l1, l2, positive)
                epochs += 1
                if da <= thr:
                    break
    return epochs, gap


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def grad_dense(X, n, wr, out):
    """out = X^T wr, column by column (X column-major, flattened).

    A single-threaded loop rather than BLAS gemv: on a shared machine a
    multi-threaded gemv can be many times slower than one core, and this pass
    runs once per lam.
    """
    for j in range(out.shape[0]):
        base = j * n
        acc = 0.0
        for i in range(n):
            acc += X[base + i] * wr[i]
        out[j] = acc
