"""Compiled covariance-mode coordinate descent (numba), the fast path of `_cd_numpy.cd_gram`.

With ``G = X~^T W X~`` and ``q = X~^T W zc`` precomputed, the gradient
``h = q - G b`` is updated in O(p) per coordinate (glmnet's covariance
updates); the schedule (gap checks, active set, Anderson steps) is that of
`_cd_numba.cd_residual`.
"""

from __future__ import annotations

import numba
import numpy as np

from ._cd_numba import _FAST, _anderson_weights, _build_active, _copy, _gap, _prox


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
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


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _objective_gram(zz, q, h, b, idx, na, l1, l2):
    # 1/2 ||r||^2 = 1/2 (zz - b.q - b.h), plus the penalty over idx
    bq = 0.0
    bh = 0.0
    for j in range(b.shape[0]):
        if b[j] != 0.0:
            bq += b[j] * q[j]
            bh += b[j] * h[j]
    pen = 0.0
    for k in range(na):
        j = idx[k]
        pen += l1[j] * abs(b[j]) + 0.5 * l2[j] * b[j] * b[j]
    return 0.5 * (zz - bq - bh) + pen


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _try_extrapolation_gram(G, q, zz, h, b, active, na, l1, l2, positive, hist, K, h_tmp,
                            b_tmp):
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
    old = _objective_gram(zz, q, h, b, active, na, l1, l2)
    _copy(h_tmp, h)
    p = h.shape[0]
    saved = np.empty(na)
    for k in range(na):
        j = active[k]
        d = b_tmp[k] - b[j]
        saved[k] = b[j]
        if d != 0.0:
            for i in range(p):
                h_tmp[i] -= d * G[j, i]
        b[j] = b_tmp[k]
    if _objective_gram(zz, q, h_tmp, b, active, na, l1, l2) < old:
        _copy(h, h_tmp)
    else:
        for k in range(na):
            b[active[k]] = saved[k]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def cd_gram(G, q, zz, h, b, ws, l1, l2, positive, form_b, max_epochs, tol):
    """Covariance-update coordinate descent: ``h = q - G b`` is kept up to date.

    Every update costs O(p) instead of O(n), glmnet's choice when n >> p.
    Same schedule as `cd_residual`. Returns ``(epochs, gap)``.
    """
    K = 5
    nws = ws.shape[0]
    active = np.empty(nws, dtype=np.int64)
    hist = np.empty((K + 1, nws))
    h_tmp = np.empty(h.shape[0])
    b_tmp = np.empty(nws)
    g_ws = np.empty(nws)
    H = np.empty(h.shape[0])
    for j in range(h.shape[0]):
        H[j] = G[j, j]
    epochs = 0
    thr = tol
    while True:
        gap = _gap_gram(zz, q, h, b, ws, l1, l2, positive, form_b)
        if gap <= tol or epochs >= max_epochs:
            break
        for k in range(nws):
            g_ws[k] = h[ws[k]]
        na = _build_active(ws, b, l1, H, g_ws, positive, active)
        for k in range(na):
            hist[0, k] = b[active[k]]
        nh = 1
        while epochs < max_epochs:
            da = _sweep_gram(G, h, b, active, na, l1, l2, positive)
            epochs += 1
            if da <= thr:
                break
            for k in range(na):
                hist[nh, k] = b[active[k]]
            nh += 1
            if nh == K + 1:
                _try_extrapolation_gram(G, q, zz, h, b, active, na, l1, l2, positive,
                                        hist[:, :na], K, h_tmp, b_tmp)
                for k in range(na):
                    hist[0, k] = b[active[k]]
                nh = 1
        thr *= 0.1
    return epochs, gap
