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


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _col_axpy(j, X, n, data, indices, indptr, sparse, delta, r):
    """r -= delta * X[:, j]."""
    if sparse:
        for k in range(indptr[j], indptr[j + 1]):
            r[indices[k]] -= delta * data[k]
    else:
        base = j * n
        for i in range(n):
            r[i] -= delta * X[base + i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _copy(dst, src):
    """dst[:] = src as a loop (slice assignment costs seconds of compile time)."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _prox(u, l1, denom, positive):
    """argmin_t denom/2 t^2 - u t + l1 |t| (t >= 0 if positive)."""
    if positive:
        return max(u - l1, 0.0) / denom
    if u > l1:
        return (u - l1) / denom
    if u < -l1:
        return (u + l1) / denom
    return 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _gap(rr, zr, dn, l1n, l2n, pen_b, form_b):
    """Duality gap from the residual norms (formula derived in `_cd_numpy.gap_terms`)."""
    if form_b:
        return rr - zr + l1n + 0.5 * l2n + pen_b
    sig = 1.0 if dn <= 1.0 else 1.0 / dn
    return 0.5 * (1.0 + sig * sig) * (rr + l2n) - sig * zr + l1n


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _gap_given_g(w, zc, r, s, b, ws, l1, l2, positive, form_b, g_ws):
    """Duality gap on ``ws`` from known gradients g_ws (no pass over X)."""
    n = r.shape[0]
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
        g = g_ws[k]
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


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _gap_ws(X, n, data, indices, indptr, sparse, w, wsum, zc, r, s, b, ws, l1, l2, m,
            positive, form_b, g_out):
    """Gradients on ``ws`` (one pass over those columns) and the duality gap there."""
    for k in range(ws.shape[0]):
        j = ws[k]
        g_out[k] = _col_dot(j, X, n, data, indices, indptr, sparse, w, r) + s * wsum * m[j]
    return _gap_given_g(w, zc, r, s, b, ws, l1, l2, positive, form_b, g_out)


@numba.njit(cache=True, nogil=True, error_model="numpy")
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _build_active(ws, b, l1, H, g_ws, positive, active):
    """Active list: non-zeros, unpenalised features and KKT violators of ``ws``."""
    na = 0
    for k in range(ws.shape[0]):
        j = ws[k]
        if H[j] <= 0.0:
            continue
        g = g_ws[k] if positive else abs(g_ws[k])
        if b[j] != 0.0 or l1[j] == 0.0 or g > l1[j]:
            active[na] = j
            na += 1
    return na


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _anderson_weights(hist, K):
    """Anderson mixing weights c (sum 1) minimising ||sum_i c_i (b_{i+1} - b_i)||.

    Solves the K x K system (U U^T) z = 1 by Gaussian elimination with
    partial pivoting, written out: numba's np.linalg.solve costs ~20 s of
    compile time for a 5 x 5 system.
    """
    m = hist.shape[1]
    C = np.zeros((K, K + 1))  # augmented [U U^T | 1]
    for a in range(K):
        for b in range(a, K):
            acc = 0.0
            for t in range(m):
                acc += (hist[a + 1, t] - hist[a, t]) * (hist[b + 1, t] - hist[b, t])
            C[a, b] = acc
            C[b, a] = acc
        C[a, K] = 1.0
    tr = 0.0
    for a in range(K):
        tr += C[a, a]
    if not tr > 0.0:
        return np.zeros(0)
    for a in range(K):
        C[a, a] += 1e-12 * tr  # keeps C invertible when iterates are (nearly) dependent
    for col in range(K):
        piv = col
        for row in range(col + 1, K):
            if abs(C[row, col]) > abs(C[piv, col]):
                piv = row
        if abs(C[piv, col]) <= 1e-300:
            return np.zeros(0)
        if piv != col:
            for t in range(K + 1):
                C[col, t], C[piv, t] = C[piv, t], C[col, t]
        for row in range(col + 1, K):
            f = C[row, col] / C[col, col]
            for t in range(col, K + 1):
                C[row, t] -= f * C[col, t]
    z = np.zeros(K)
    for row in range(K - 1, -1, -1):
        acc = C[row, K]
        for t in range(row + 1, K):
            acc -= C[row, t] * z[t]
        z[row] = acc / C[row, row]
    sz = z.sum()
    if sz == 0.0 or not np.isfinite(sz):
        return np.zeros(0)
    return z / sz


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _objective_res(w, r, s, b, idx, na, l1, l2):
    """1/2 ||r + s||_W^2 + penalty over idx (the terms an update of idx can change)."""
    rr = 0.0
    if w.shape[0] == 0:
        for i in range(r.shape[0]):
            ri = r[i] + s
            rr += ri * ri
    else:
        for i in range(r.shape[0]):
            ri = r[i] + s
            rr += w[i] * ri * ri
    pen = 0.0
    for k in range(na):
        j = idx[k]
        pen += l1[j] * abs(b[j]) + 0.5 * l2[j] * b[j] * b[j]
    return 0.5 * rr + pen


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _try_extrapolation(X, n, data, indices, indptr, sparse, w, r, st, b, active, na, l1, l2,
                       m, positive, hist, K, r_tmp, b_tmp):
    """Anderson step on the active coordinates, kept only if the objective drops."""
    c = _anderson_weights(hist, K)
    if c.shape[0] == 0:
        return
    for k in range(na):
        acc = 0.0
        for i in range(K):
            acc += c[i] * hist[i + 1, k]
        if positive and acc < 0.0:
            return
        b_tmp[k] = acc
    _copy(r_tmp, r)
    s_new = st[0]
    for k in range(na):
        j = active[k]
        d = b_tmp[k] - b[j]
        if d != 0.0:
            _col_axpy(j, X, n, data, indices, indptr, sparse, d, r_tmp)
            s_new += d * m[j]
    old = _objective_res(w, r, st[0], b, active, na, l1, l2)
    saved = np.empty(na)
    for k in range(na):
        saved[k] = b[active[k]]
        b[active[k]] = b_tmp[k]
    if _objective_res(w, r_tmp, s_new, b, active, na, l1, l2) < old:
        _copy(r, r_tmp)
        st[0] = s_new
    else:
        for k in range(na):
            b[active[k]] = saved[k]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def cd_residual(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st, b, ws, l1, l2, H, m,
                positive, form_b, max_epochs, tol, g_ws, g_ready=True):
    """Coordinate descent on the working set ``ws``: active-set cycling + Anderson.

    Each round checks the duality gap on ``ws`` (which also gives every
    gradient there), rebuilds the active list (non-zeros and KKT violators)
    and cycles on it until an epoch's largest decrease is below a threshold
    that shrinks tenfold per round; every K = 5 epochs an Anderson step
    (Bertrand and Massias 2021) extrapolates the iterates.
    With ``g_ready``, ``g_ws`` holds the gradient on ``ws`` at the starting
    point (the drivers have it from their last KKT pass) and the first check
    needs no pass over X; on return it holds the gradient at the last check.
    Returns ``(epochs, gap)``.
    """
    K = 5
    nws = ws.shape[0]
    active = np.empty(nws, dtype=np.int64)
    hist = np.empty((K + 1, nws))
    r_tmp = np.empty(r.shape[0])
    b_tmp = np.empty(nws)
    epochs = 0
    thr = tol
    first = g_ready
    while True:
        if first:  # g_ws holds the gradient at the starting point: no pass needed
            gap = _gap_given_g(w, zc, r, st[0], b, ws, l1, l2, positive, form_b, g_ws)
            first = False
        else:
            gap = _gap_ws(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st[0], b, ws, l1,
                          l2, m, positive, form_b, g_ws)
        if gap <= tol or epochs >= max_epochs:
            break
        na = _build_active(ws, b, l1, H, g_ws, positive, active)
        for k in range(na):
            hist[0, k] = b[active[k]]
        nh = 1
        while epochs < max_epochs:
            da = _sweep(X, n, data, indices, indptr, sparse, w, wsum, r, st, b, active, na,
                        l1, l2, H, m, positive)
            epochs += 1
            if da <= thr:
                break
            for k in range(na):
                hist[nh, k] = b[active[k]]
            nh += 1
            if nh == K + 1:
                _try_extrapolation(X, n, data, indices, indptr, sparse, w, r, st, b, active,
                                   na, l1, l2, m, positive, hist[:, :na], K, r_tmp, b_tmp)
                for k in range(na):
                    hist[0, k] = b[active[k]]
                nh = 1
        thr *= 0.1
    return epochs, gap


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
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
