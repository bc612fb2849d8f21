"""Coordinate-descent kernels, one source for the numba and the numpy backends.

Loaded twice by `_kernels` (compiled and plain); only the innermost
primitives (`_cd_prims`) differ between the two, the rest is shared. The problem,
over the working set ``ws`` (unnormalised, so the kernels never divide by n)::

    min_b  1/2 sum_i w_i (zc_i - (X b)_i + (m . b))^2
           + sum_j l1_j |b_j| + l2_j / 2 b_j^2        (b_j >= 0 if positive)

``D`` is a `_kernels.Data` (residual mode) or `_kernels.Gram` (covariance
mode). ``m`` centres X without copying it, which keeps sparse X sparse; the
residual is stored as ``r + s`` with ``s = m . b``, so an update of b_j
touches only the non-zeros of column j. Because the intercept is optimal at
every step the centred gradient is ``X_j^T W r + s wsum m_j``. The update is
the exact minimiser along b_j (Friedman, Hastie and Tibshirani 2010)::

    b_j <- S(g_j + H_j b_j, l1_j) / (H_j + l2_j),   S(u, t) = sign(u)(|u| - t)_+

The stopping rule is the duality gap (`gap_core`), exact for unpenalised
features (``D.free``): the dual point is the residual projected off their
columns, which is always dual feasible for them.
"""

from __future__ import annotations

import numpy as np

from ._kernels import backend_of, decorators, is_jit, load

JIT = is_jit(__name__)
njit, njit_fast = decorators(JIT)

P = load("_cd_prims", backend_of(JIT))
_col_dot, _col_axpy, _res_norms = P._col_dot, P._col_axpy, P._res_norms
_copy, _grad_cols, _dual_terms = P._copy, P._grad_cols, P._dual_terms
scale_into, gather, scatter, where = P.scale_into, P.gather, P.scatter, P.where
strong_set, kkt_violators, grad_dense = P.strong_set, P.kkt_violators, P.grad_dense
grad_gap_terms = P.grad_gap_terms
_prox, _sweep, _axpy_cols = P._prox, P._sweep, P._axpy_cols


@njit
def solve_small(C, rhs):
    """Solve (C + 1e-12 tr(C) I) z = rhs by Gaussian elimination with partial pivoting.

    Written out for the tiny systems here (numba's np.linalg.solve costs
    seconds of compile time); the ridge keeps C invertible when columns are
    dependent. Returns an empty array when C is zero or singular.
    """
    K = C.shape[0]
    A = np.empty((K, K + 1))
    tr = 0.0
    for a in range(K):
        for c in range(K):
            A[a, c] = C[a, c]
        A[a, K] = rhs[a]
        tr += C[a, a]
    if not tr > 0.0:
        return np.zeros(0)
    for a in range(K):
        A[a, a] += 1e-12 * tr
    for col in range(K):
        piv = col
        for row in range(col + 1, K):
            if abs(A[row, col]) > abs(A[piv, col]):
                piv = row
        if abs(A[piv, col]) <= 1e-300:
            return np.zeros(0)
        if piv != col:
            for t in range(K + 1):
                tmp = A[col, t]
                A[col, t] = A[piv, t]
                A[piv, t] = tmp
        for row in range(col + 1, K):
            f = A[row, col] / A[col, col]
            for t in range(col, K + 1):
                A[row, t] -= f * A[col, t]
    z = np.zeros(K)
    for row in range(K - 1, -1, -1):
        acc = A[row, K]
        for t in range(row + 1, K):
            acc -= A[row, t] * z[t]
        z[row] = acc / A[row, row]
    return z


@njit
def gap_core(rr, zr, D, b, ws, l1, l2, positive, form_b, g_ws):
    """Duality gap over ``ws`` from ``||r||^2``, ``zc.r`` and the gradients ``g_ws``.

    The elastic net is a lasso on X stacked over diag(sqrt(l2)); the dual
    point is the residual projected off the free columns (``D.free``, those
    in ``ws``; under ``positive`` only those with b > 0), ``r~ = r - X_U c``,
    scaled by ``sig = min(1, 1/dn)``, ``dn = max_j |g~_j - l2_j b_j| / l1_j``::

        gap = (||r||^2 + sum l2 b^2)/2 + sum l1|b| - sig zc.r~ + sig^2 (||r~||^2 + sum l2 b^2)/2

    With ``form_b`` (ridge, l1 = 0) the unscaled form of Duenner et al.
    (2016, sec. 5.2.3). Both equal scikit-learn's when no feature is free.
    """
    nws = ws.shape[0]
    rrt = rr
    zrt = zr
    gt = g_ws
    nf = 0
    nsel = nws if D.free.shape[0] > 0 else 0
    sel = np.empty(nsel, dtype=np.int64)
    kpos = np.empty(nsel, dtype=np.int64)
    if nsel > 0:
        for k in range(nws):
            j = ws[k]
            t = D.fpos[j]
            if t >= 0 and (not positive or b[j] > 0.0):
                sel[nf] = t
                kpos[nf] = k
                nf += 1
    if nf > 0:
        C = np.empty((nf, nf))
        rhs = np.empty(nf)
        for a in range(nf):
            for c in range(nf):
                C[a, c] = D.GU[D.free[sel[a]], sel[c]]
            rhs[a] = g_ws[kpos[a]]
        coef = solve_small(C, rhs)
        if coef.shape[0] == 0:
            return np.inf
        gt = g_ws.copy()
        for a in range(nf):
            rrt -= coef[a] * rhs[a]
            zrt -= coef[a] * D.q[D.free[sel[a]]]
        for k in range(nws):
            acc = 0.0
            for a in range(nf):
                acc += D.GU[ws[k], sel[a]] * coef[a]
            gt[k] = g_ws[k] - acc
    dn, l1n, l2n, pen_b = _dual_terms(gt, b, ws, l1, l2, positive, form_b)
    if form_b:
        return 0.5 * (rr + l2n + rrt) + l1n - zrt + pen_b
    return gap_from_terms(rr, zrt, rrt, dn, l1n, l2n)


@njit
def gap_from_terms(rr, zrt, rrt, dn, l1n, l2n):
    """The gap of `gap_core` (not ``form_b``) from its terms: dual point ``r~ / max(1, dn)``."""
    sig = 1.0 if dn <= 1.0 else 1.0 / dn
    return 0.5 * (rr + l2n) + l1n - sig * zrt + 0.5 * sig * sig * (rrt + l2n)


@njit
def gap_given_g(D, r, s, b, ws, l1, l2, positive, form_b, g_ws):
    """Duality gap on ``ws`` from known gradients ``g_ws`` (no pass over X)."""
    rr, zr = _res_norms(D.w, D.zc, r, s)
    return gap_core(rr, zr, D, b, ws, l1, l2, positive, form_b, g_ws)


@njit
def gap_ws(D, r, s, b, ws, l1, l2, positive, form_b, g_out):
    """Gradients on ``ws`` into ``g_out`` (one pass over those columns) and the gap there."""
    _grad_cols(D, r, s, ws, g_out)
    return gap_given_g(D, r, s, b, ws, l1, l2, positive, form_b, g_out)


@njit
def _build_active(ws, b, l1, H, g_ws, positive, active):
    """Active list: non-zeros, unpenalised features and KKT violators of ``ws``."""
    na = 0
    for k in range(ws.shape[0]):
        j = ws[k]
        g = g_ws[k] if positive else abs(g_ws[k])
        # written always, kept by the count: the members lie at random, so a branch per
        # feature would mispredict (| rather than or: no short-circuit branches either)
        active[na] = j
        na += (H[j] > 0.0) & ((b[j] != 0.0) | (l1[j] == 0.0) | (g > l1[j]))
    return na


@njit
def anderson_weights(hist, K):
    """Weights c (sum 1) minimising ||sum_i c_i (b_{i+1} - b_i)|| over K + 1 iterates.

    Anderson acceleration of coordinate descent (Bertrand and Massias 2021);
    empty when the iterates give no usable extrapolation.
    """
    m = hist.shape[1]
    C = np.zeros((K, K))
    for a in range(K):
        for c in range(a, K):
            acc = 0.0
            for t in range(m):
                acc += (hist[a + 1, t] - hist[a, t]) * (hist[c + 1, t] - hist[c, t])
            C[a, c] = acc
            C[c, a] = acc
    z = solve_small(C, np.ones(K))
    if z.shape[0] == 0:
        return z
    sz = z.sum()
    if sz == 0.0 or not np.isfinite(sz):
        return np.zeros(0)
    return z / sz


@njit
def penalty(b, idx, na, l1, l2):
    """sum over idx[:na] of l1_j |b_j| + l2_j / 2 b_j^2."""
    pen = 0.0
    for k in range(na):
        j = idx[k]
        pen += l1[j] * abs(b[j]) + 0.5 * l2[j] * b[j] * b[j]
    return pen


@njit
def _extrapolated(hist, K, na, positive, b_tmp):
    """Anderson extrapolation of the active coordinates into b_tmp; False if none."""
    c = anderson_weights(hist, K)
    if c.shape[0] == 0:
        return False
    for k in range(na):
        acc = 0.0
        for i in range(K):
            acc += c[i] * hist[i + 1, k]
        if positive and acc < 0.0:
            return False
        b_tmp[k] = acc
    return True


@njit
def _try_extrapolation(D, r, st, b, active, na, l1, l2, positive, hist, K, r_tmp, b_tmp):
    """Anderson step on the active coordinates, kept only if the objective drops."""
    if not _extrapolated(hist, K, na, positive, b_tmp):
        return
    _copy(r_tmp, r)
    delta = np.empty(na)
    for k in range(na):
        delta[k] = b_tmp[k] - b[active[k]]
    s_new = st[0] + _axpy_cols(D, active, delta, na, r_tmp)
    old = 0.5 * _res_norms(D.w, D.zc, r, st[0])[0] + penalty(b, active, na, l1, l2)
    saved = np.empty(na)
    for k in range(na):
        saved[k] = b[active[k]]
        b[active[k]] = b_tmp[k]
    if 0.5 * _res_norms(D.w, D.zc, r_tmp, s_new)[0] + penalty(b, active, na, l1, l2) < old:
        _copy(r, r_tmp)
        st[0] = s_new
    else:
        for k in range(na):
            b[active[k]] = saved[k]


@njit
def cycle_active(D, r, st, b, active, na, l1, l2, positive, thr, epochs, max_epochs, hist, r_tmp,
                 b_tmp):
    """Sweep the active list until an epoch moves nothing by more than ``thr``; returns epochs.

    Every K = ``hist.shape[0] - 1`` sweeps an Anderson step extrapolates the
    last K + 1 iterates (:func:`_try_extrapolation`), kept if it lowers the
    objective. ``epochs`` counts on from its value at entry, up to ``max_epochs``.
    """
    K = hist.shape[0] - 1
    for k in range(na):
        hist[0, k] = b[active[k]]
    nh = 1
    while epochs < max_epochs:
        da = _sweep(D, r, st, b, active, na, l1, l2, positive)
        epochs += 1
        if da <= thr:
            break
        for k in range(na):
            hist[nh, k] = b[active[k]]
        nh += 1
        if nh == K + 1:
            _try_extrapolation(D, r, st, b, active, na, l1, l2, positive, hist[:, :na], K,
                               r_tmp, b_tmp)
            for k in range(na):
                hist[0, k] = b[active[k]]
            nh = 1
    return epochs


@njit
def cd_residual(D, r, st, b, ws, l1, l2, positive, form_b, max_epochs, tol, g_ws, g_ready):
    """Coordinate descent on the working set ``ws``: active-set cycling + Anderson.

    Each round checks the duality gap on ``ws`` (which also gives every
    gradient there), rebuilds the active list (non-zeros and KKT violators)
    and cycles on it until an epoch's largest decrease is below a threshold
    that shrinks tenfold per round; every K = 5 epochs an Anderson step
    extrapolates the iterates. ``r``, ``st = [s]`` and ``b`` are updated in
    place. With ``g_ready``, ``g_ws`` holds the gradient on ``ws`` at the
    start (no first pass over X); on return it holds the gradient at the last
    check. Returns ``(epochs, gap)``.
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
        if first:
            gap = gap_given_g(D, r, st[0], b, ws, l1, l2, positive, form_b, g_ws)
            first = False
        else:
            gap = gap_ws(D, r, st[0], b, ws, l1, l2, positive, form_b, g_ws)
        if gap <= tol or epochs >= max_epochs:
            break
        na = _build_active(ws, b, l1, D.H, g_ws, positive, active)
        epochs = cycle_active(D, r, st, b, active, na, l1, l2, positive, thr, epochs, max_epochs,
                              hist, r_tmp, b_tmp)
        thr *= 0.1
    return epochs, gap


@njit
def _nonzero_active(ws, b, l1, H, active):
    """Active list without gradients: the non-zeros and unpenalised features of ``ws``."""
    na = 0
    for k in range(ws.shape[0]):
        j = ws[k]
        active[na] = j  # branch-free, as in `_build_active`
        na += (H[j] > 0.0) & ((b[j] != 0.0) | (l1[j] == 0.0))
    return na


@njit
def cd_active(D, r, st, b, ws, l1, l2, positive, max_epochs, thr, g_ws):
    """glmnet's inner loop on the working set ``ws``, with no duality gap inside.

    Cycles on the active list (non-zeros, unpenalised features and, from the
    gradients ``g_ws`` on ``ws`` at entry, KKT violators) until an epoch's
    largest ``(H_j + l2_j) d_j^2`` is <= ``thr`` (glmnet's ``dlx < thr *
    nulldev``), with an Anderson step every K = 5 epochs; then one sweep over
    all of ``ws``: if it moves nothing by more than ``thr`` and adds no new
    non-zero, stop, else cycle again on the grown active list (Friedman et al.
    2010, sec. 2.6). The caller checks the gap once at the end. Returns epochs.
    """
    K = 5
    nws = ws.shape[0]
    active = np.empty(nws, dtype=np.int64)
    hist = np.empty((K + 1, nws))
    r_tmp = np.empty(r.shape[0])
    b_tmp = np.empty(nws)
    epochs = 0
    na = _build_active(ws, b, l1, D.H, g_ws, positive, active)
    while epochs < max_epochs:
        epochs = cycle_active(D, r, st, b, active, na, l1, l2, positive, thr, epochs, max_epochs,
                              hist, r_tmp, b_tmp)
        if epochs >= max_epochs or na == nws:
            break
        da = _sweep(D, r, st, b, ws, nws, l1, l2, positive)
        epochs += 1
        na_new = _nonzero_active(ws, b, l1, D.H, active)
        if da <= thr and na_new <= na:
            break
        na = na_new
    return epochs
