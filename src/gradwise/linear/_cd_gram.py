"""Covariance-mode coordinate descent (glmnet's choice when n >> p), one source for both backends.

With ``G = X~^T W X~``, ``q = X~^T W zc`` and ``zz = zc^T W zc`` precomputed
(a `_kernels.Gram`), the gradient ``h = q - G b`` is updated in O(p) per
coordinate instead of O(n). The schedule (gap checks, active set, Anderson
steps) is `_cd.cd_residual`'s.
"""

from __future__ import annotations

import numpy as np

from ._kernels import backend_of, decorators, is_jit, load

JIT = is_jit(__name__)
njit, _ = decorators(JIT)
_name = backend_of(JIT)
P = load("_cd_prims", _name)
cd = load("_cd", _name)
_dot, _copy, _row_axpy = P._dot, P._copy, P._row_axpy
_prox, gap_core, penalty, _build_active = cd._prox, cd.gap_core, cd.penalty, cd._build_active
_extrapolated = cd._extrapolated


@njit
def gap_gram(Gm, h, b, ws, l1, l2, positive, form_b, g_ws):
    """Duality gap in covariance mode; ``g_ws`` receives h on ws.

    With ``h = q - G b``: ``||r||^2 = zz - b.q - b.h`` and ``zc.r = zz - b.q``.
    """
    bq = _dot(b, Gm.q)
    rr = Gm.zz - bq - _dot(b, h)
    for k in range(ws.shape[0]):
        g_ws[k] = h[ws[k]]
    return gap_core(rr, Gm.zz - bq, Gm, b, ws, l1, l2, positive, form_b, g_ws)


@njit
def _sweep_gram(G, h, b, idx, nidx, l1, l2, positive):
    dmax = 0.0
    for k in range(nidx):
        j = idx[k]
        hj = G[j, j]
        if hj <= 0.0:
            continue
        bj = b[j]
        new = _prox(h[j] + hj * bj, l1[j], hj + l2[j], positive)
        d = new - bj
        if d != 0.0:
            _row_axpy(h, d, G, j)
            b[j] = new
            dmax = max(dmax, (hj + l2[j]) * d * d)
    return dmax


@njit
def _try_extrapolation_gram(Gm, h, b, active, na, l1, l2, positive, hist, K, h_tmp, b_tmp):
    if not _extrapolated(hist, K, na, positive, b_tmp):
        return
    old = 0.5 * (Gm.zz - _dot(b, Gm.q) - _dot(b, h)) + penalty(b, active, na, l1, l2)
    _copy(h_tmp, h)
    saved = np.empty(na)
    for k in range(na):
        j = active[k]
        saved[k] = b[j]
        d = b_tmp[k] - b[j]
        if d != 0.0:
            _row_axpy(h_tmp, d, Gm.G, j)
        b[j] = b_tmp[k]
    if 0.5 * (Gm.zz - _dot(b, Gm.q) - _dot(b, h_tmp)) + penalty(b, active, na, l1, l2) < old:
        _copy(h, h_tmp)
    else:
        for k in range(na):
            b[active[k]] = saved[k]


@njit
def cd_gram(Gm, h, b, ws, l1, l2, positive, form_b, max_epochs, tol):
    """Covariance-update coordinate descent: ``h = q - G b`` kept current in place.

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
    epochs = 0
    thr = tol
    while True:
        gap = gap_gram(Gm, h, b, ws, l1, l2, positive, form_b, g_ws)
        if gap <= tol or epochs >= max_epochs:
            break
        na = _build_active(ws, b, l1, Gm.H, g_ws, positive, active)
        for k in range(na):
            hist[0, k] = b[active[k]]
        nh = 1
        while epochs < max_epochs:
            da = _sweep_gram(Gm.G, h, b, active, na, l1, l2, positive)
            epochs += 1
            if da <= thr:
                break
            for k in range(na):
                hist[nh, k] = b[active[k]]
            nh += 1
            if nh == K + 1:
                _try_extrapolation_gram(Gm, h, b, active, na, l1, l2, positive, hist[:, :na], K,
                                        h_tmp, b_tmp)
                for k in range(na):
                    hist[0, k] = b[active[k]]
                nh = 1
        thr *= 0.1
    return epochs, gap
