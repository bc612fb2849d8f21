"""Compiled path drivers: the per-lam loop of `_enet.solve_path` inside numba.

A lam that takes a few hundred microseconds of coordinate descent would
otherwise spend as long again in Python bookkeeping (strong rule, KKT check,
gap). These drivers run the same steps as `_enet.solve_lam` for a run of
lams and return early at the first lam that does not converge within
``chunk`` epochs, which `_enet.solve_path` then finishes in Python (where
the exact polish lives) before resuming here. Tested equal to the Python
driver in ``tests/linear``.
"""

from __future__ import annotations

import numba
import numpy as np

from ._cd_numba import _col_axpy, _copy, _gap_given_g, _gap_ws, _objective_res, cd_residual
from ._cd_numba_gram import cd_gram


@numba.njit(cache=True, nogil=True, error_model="numpy")
def path_gram(G, q, zz, h, b, lams, l1u, l2u, positive, form_b, tol, chunk, coefs, gaps,
              iters, start):
    """Covariance mode: ``h = q - G b`` is the full gradient, so the kernel's gap
    over all usable features is the full gap and no separate KKT pass is needed."""
    p = h.shape[0]
    nu = 0
    for j in range(p):
        if G[j, j] > 0.0:
            nu += 1
    ws = np.empty(nu, dtype=np.int64)
    nu = 0
    for j in range(p):
        if G[j, j] > 0.0:
            ws[nu] = j
            nu += 1
    l1 = np.empty(p)
    l2 = np.empty(p)
    for k in range(start, lams.shape[0]):
        for j in range(p):
            l1[j] = lams[k] * l1u[j]
            l2[j] = lams[k] * l2u[j]
        ep, gap = cd_gram(G, q, zz, h, b, ws, l1, l2, positive, form_b, chunk, tol)
        coefs[:, k] = b
        gaps[k] = gap
        iters[k] = ep
        if gap > tol:
            return k
    return lams.shape[0]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _penalty_sum(b, l1, l2, idx):
    acc = 0.0
    for t in range(idx.shape[0]):
        j = idx[t]
        acc += l1[j] * abs(b[j]) + 0.5 * l2[j] * b[j] * b[j]
    return acc


@numba.njit(cache=True, nogil=True, error_model="numpy")
def predict_step(X, n, data, indices, indptr, sparse, w, r, st, b, b2, f, m, l1, l2, usable,
                 r_tmp, bp):
    """Extrapolate the path: ``b + f (b - b2)`` on the support, kept if the objective drops.

    Between knots the lasso path is linear in lam (and the elastic net's
    smooth), so extrapolating from the last two solutions is a far better
    warm start than the last solution alone: about half the epochs on long
    paths. Coordinates whose sign would flip are set to zero.
    Returns True when the prediction replaced (b, r, s).
    """
    changed = False
    for t in range(usable.shape[0]):
        j = usable[t]
        v = b[j]
        if v != 0.0:
            v = v + f * (v - b2[j])
            if (v > 0.0) != (b[j] > 0.0):
                v = 0.0
        bp[j] = v
        if v != b[j]:
            changed = True
    if not changed:
        return False
    _copy(r_tmp, r)
    s_new = st[0]
    for t in range(usable.shape[0]):
        j = usable[t]
        d = bp[j] - b[j]
        if d != 0.0:
            _col_axpy(j, X, n, data, indices, indptr, sparse, d, r_tmp)
            s_new += d * m[j]
    old = _objective_res(w, r, st[0], b, usable, 0, l1, l2) + _penalty_sum(b, l1, l2, usable)
    new = _objective_res(w, r_tmp, s_new, bp, usable, 0, l1, l2) + _penalty_sum(bp, l1, l2,
                                                                               usable)
    if new >= old:
        return False
    _copy(r, r_tmp)
    st[0] = s_new
    for t in range(usable.shape[0]):
        b[usable[t]] = bp[usable[t]]
    return True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def path_residual(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st, b, g, H, m, lams,
                  lam_prev, l1u, l2u, positive, form_b, tol, chunk, coefs, gaps, iters, start):
    """Residual mode: strong rule, kernel on the working set, one KKT/gap pass over all
    features, violators join, repeat (see `_enet.solve_lam`). ``g`` is updated in place."""
    p = b.shape[0]
    nu = 0
    for j in range(p):
        if H[j] > 0.0:
            nu += 1
    usable = np.empty(nu, dtype=np.int64)
    nu = 0
    for j in range(p):
        if H[j] > 0.0:
            usable[nu] = j
            nu += 1
    l1 = np.empty(p)
    l2 = np.empty(p)
    in_ws = np.zeros(p, dtype=np.bool_)
    viol = np.empty(p, dtype=np.int64)
    g_use = np.empty(nu)
    b_last = np.empty(p)  # solutions at the last two lams, for the path prediction
    _copy(b_last, b)
    b_last2 = np.zeros(p)
    lam_pp = -1.0
    r_tmp = np.empty(r.shape[0])
    bp = np.empty(p)
    for k in range(start, lams.shape[0]):
        lam = lams[k]
        for j in range(p):
            l1[j] = lam * l1u[j]
            l2[j] = lam * l2u[j]
            in_ws[j] = False
        nws = 0
        for t in range(nu):
            j = usable[t]
            gj = g[j] if positive else abs(g[j])
            strong = np.inf if lam_prev < 0.0 else (2.0 * lam - lam_prev) * l1u[j]
            if b[j] != 0.0 or l1[j] == 0.0 or gj >= strong:
                in_ws[j] = True
                nws += 1
        epochs = 0
        tol_k = tol
        # the previous solution may already be good enough at this lam (g is current)
        for t in range(nu):
            g_use[t] = g[usable[t]]
        gap = _gap_given_g(w, zc, r, st[0], b, usable, l1, l2, positive, form_b, g_use)
        g_ready = True
        if gap > tol and lam_pp > lam_prev and not positive:
            f = (lam - lam_prev) / (lam_prev - lam_pp)
            if predict_step(X, n, data, indices, indptr, sparse, w, r, st, b, b_last2, f, m,
                            l1, l2, usable, r_tmp, bp):
                g_ready = False  # the kernel's first gap check recomputes g on ws
        while gap > tol:
            ws = np.empty(nws, dtype=np.int64)
            c = 0
            for j in range(p):
                if in_ws[j]:
                    ws[c] = j
                    c += 1
            g_ws = np.empty(nws)
            for t in range(nws):
                g_ws[t] = g[ws[t]]  # current: the kernel skips its first pass
            ep, _ = cd_residual(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st, b, ws,
                                l1, l2, H, m, positive, form_b, chunk - epochs, tol_k, g_ws,
                                g_ready)
            g_ready = True
            epochs += ep
            g_all = np.empty(nu)
            gap = _gap_ws(X, n, data, indices, indptr, sparse, w, wsum, zc, r, st[0], b, usable,
                          l1, l2, m, positive, form_b, g_all)
            for t in range(nu):
                g[usable[t]] = g_all[t]
            if gap <= tol or epochs >= chunk:
                break
            nv = 0
            for t in range(nu):
                j = usable[t]
                gj = g[j] if positive else abs(g[j])
                if not in_ws[j] and gj > l1[j] * (1.0 + 1e-12):
                    viol[nv] = j
                    nv += 1
            if nv == 0:
                tol_k *= 0.5  # the kernel met tol only up to round-off: ask for more
                continue
            for t in range(nv):  # all violators join (glmnet); the strong rule keeps them few
                in_ws[viol[t]] = True
            nws += nv
        coefs[:, k] = b
        gaps[k] = gap
        iters[k] = epochs
        if gap > tol:
            return k
        _copy(b_last2, b_last)
        _copy(b_last, b)
        lam_pp = lam_prev
        lam_prev = lam
    return lams.shape[0]
