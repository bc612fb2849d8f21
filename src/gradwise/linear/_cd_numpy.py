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


def _gap_given_g(w, zc, r, s, b, ws, l1, l2, positive, form_b, g_ws):
    rs = r + s
    wr = rs if w.shape[0] == 0 else w * rs
    terms = _dual_terms(g_ws, b[ws], l1[ws], l2[ws], positive, form_b)
    return gap_terms(float(rs @ wr), float(zc @ wr), *terms, form_b)


def _gap_ws(X, n, data, indices, indptr, sparse, w, wsum, zc, r, s, b, ws, l1, l2, m,
            positive, form_b, g_out):
    for k, j in enumerate(ws):
        g_out[k] = _col_dot(j, X, n, data, indices, indptr, sparse, w, r) + s * wsum * m[j]
    return _gap_given_g(w, zc, r, s, b, ws, l1, l2, positive, form_b, g_out)


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


def anderson_weights(hist: np.ndarray) -> np.ndarray | None:
    """Weights c (sum 1) minimising ||sum_i c_i (b_{i+1} - b_i)|| over K + 1 iterates.

    Anderson acceleration of coordinate descent (Bertrand and Massias 2021):
    the extrapolation ``sum_i c_i b_{i+1}`` is tried every K epochs.
    """
    U = np.diff(hist, axis=0)
    C = U @ U.T
    tr = np.trace(C)
    if tr <= 0:
        return None
    C[np.diag_indices_from(C)] += 1e-12 * tr  # invertible when iterates are dependent
    try:
        z = np.linalg.solve(C, np.ones(C.shape[0]))
    except np.linalg.LinAlgError:
        return None
    return z / z.sum() if np.isfinite(z.sum()) and z.sum() != 0 else None


def _run(sweep, gap_fn, extrapolate, b, ws, l1, H, positive, max_epochs, tol, g_ws, K=5):
    """Shared schedule: gap and KKT on ws, cycle on the active set with Anderson steps.

    Each round checks the gap on ``ws`` (the first from the given ``g_ws``),
    rebuilds the active list (non-zeros, unpenalised features, KKT
    violators) and cycles on it until an epoch's largest decrease is below a
    threshold that shrinks tenfold per round.
    """
    epochs, thr, first = 0, tol, True
    while True:
        gap = gap_fn(first)
        first = False
        if gap <= tol or epochs >= max_epochs:
            return epochs, gap
        g = g_ws if positive else np.abs(g_ws)
        keep = (H[ws] > 0) & ((b[ws] != 0) | (l1[ws] == 0) | (g > l1[ws]))
        active = ws[keep]
        hist = [b[active].copy()]
        while epochs < max_epochs:
            da = sweep(active)
            epochs += 1
            if da <= thr:
                break
            hist.append(b[active].copy())
            if len(hist) == K + 1:
                extrapolate(active, np.array(hist))
                hist = [b[active].copy()]
        thr *= 0.1


def _objective(w, r, s, b, idx, l1, l2) -> float:
    rs = r + s
    rr = rs @ rs if w.shape[0] == 0 else rs @ (w * rs)
    bi = b[idx]
    return 0.5 * float(rr) + float(l1[idx] @ np.abs(bi) + 0.5 * l2[idx] @ (bi * bi))


def cd_residual(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st, b, ws, l1, l2, H, m,
                positive, form_b, max_epochs, tol, g_ws, g_ready=True):
    """Coordinate descent on the working set ``ws``: active-set cycling + Anderson.

    Arguments: X dense (n, p) as its column-major ravel with ``n`` rows, or
    CSC arrays (data, indices, indptr) with ``sparse=True``; ``r`` (n,) and
    ``st = [s]`` the residual (updated in place); ``b`` (p,) coefficients (in
    place); ``H`` (p,) curvatures; ``form_b`` chooses the ridge form of the
    gap. ``g_ws`` holds the centred gradient on ``ws`` at the start and
    receives it at the last gap check. Returns ``(epochs, gap)``.
    """
    def sweep(idx):
        return _sweep(X, n, data, indices, indptr, sparse, w, wsum, r, st, b, idx, idx.shape[0],
                      l1, l2, H, m, positive)

    def gap(first):
        if first and g_ready:
            return _gap_given_g(w, zc, r, st[0], b, ws, l1, l2, positive, form_b, g_ws)
        return _gap_ws(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st[0], b, ws, l1,
                       l2, m, positive, form_b, g_ws)

    def extrapolate(active, hist):
        c = anderson_weights(hist)
        if c is None:
            return
        new = c @ hist[1:]
        if positive and np.any(new < 0):
            return
        r_new, s_new = r.copy(), st[0]
        for j, d in zip(active, new - b[active]):
            if d != 0.0:
                _col_axpy(j, X, n, data, indices, indptr, sparse, d, r_new)
                s_new += d * m[j]
        old_b = b[active].copy()
        before = _objective(w, r, st[0], b, active, l1, l2)
        b[active] = new
        if _objective(w, r_new, s_new, b, active, l1, l2) < before:
            r[:] = r_new
            st[0] = s_new
        else:
            b[active] = old_b

    return _run(sweep, gap, extrapolate, b, ws, l1, H, positive, max_epochs, tol, g_ws)


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
    b_j costs O(p), not O(n)). Same schedule as `cd_residual`.
    Returns ``(epochs, gap)``.
    """
    H = np.diag(G).copy()
    g_ws = np.empty(ws.shape[0])

    def gap(first):
        g_ws[:] = h[ws]
        return _gap_gram(zz, q, h, b, ws, l1, l2, positive, form_b)

    def objective(hh, idx):
        bi = b[idx]
        return 0.5 * (zz - float(b @ q) - float(b @ hh)) + float(
            l1[idx] @ np.abs(bi) + 0.5 * l2[idx] @ (bi * bi))

    def extrapolate(active, hist):
        c = anderson_weights(hist)
        if c is None:
            return
        new = c @ hist[1:]
        if positive and np.any(new < 0):
            return
        before = objective(h, active)
        h_new = h - (new - b[active]) @ G[active]
        old_b = b[active].copy()
        b[active] = new
        if objective(h_new, active) < before:
            h[:] = h_new
        else:
            b[active] = old_b

    return _run(lambda idx: _sweep_gram(G, h, b, idx, l1, l2, positive), gap, extrapolate, b,
                ws, l1, H, positive, max_epochs, tol, g_ws)


def grad_dense(X, n, wr, out):
    """out = X^T wr (BLAS gemv) for X column-major, flattened."""
    np.dot(X.reshape((out.shape[0], n)), wr, out=out)
