"""The per-lam path loop, one source for the numba and the numpy backends.

For each lam of a decreasing grid (glmnet's recipe, Tibshirani et al. 2012):

0. if the previous solution already has a duality gap <= tol here, keep it;
   otherwise try the path prediction ``b + f (b - b_prev)`` (`predict_step`);
1. the sequential strong rule picks the working set (`_cd.strong_set`);
2. coordinate descent (`_cd.cd_active`) cycles on the active set until
   glmnet's coefficient-change rule is met (threshold ``thr_scale * tol``),
   with no gap computed inside;
3. one pass over all features gives the full gradient (`_cd_screen.grad_full`, no
   feature list), then a scan gives the full gap (`_cd.grad_gap_terms`):
   KKT violators join the working set and step 2 repeats; when there are
   none yet the gap is above tol, the threshold is too loose: it is cut
   tenfold (for the next lams too) and doubled again, up to tol, after each
   lam met at its first check.

In covariance mode (`path_gram`) ``h = q - G b`` is the full gradient, so
the kernel's gap over every usable feature is the full gap already.
A lam that does not converge within ``opts.chunk`` epochs ends the run
early: `_enet.solve_path` polishes it and resumes here. Loaded by `_kernels`
as a compiled and a plain instance, each calling its own `_cd`.
"""

from __future__ import annotations

import numpy as np

from ._kernels import backend_of, decorators, is_jit, load

JIT = is_jit(__name__)
njit, _ = decorators(JIT)
cd = load("_cd", backend_of(JIT))
cg = load("_cd_gram", backend_of(JIT))


@njit
def path_gram(Gm, h, b, lams, l1u, l2u, opts, coefs, gaps, iters, start, stop):
    """Covariance mode over lams[start:stop], solution k into row ``coefs[k]``; returns the
    first lam left unconverged (or ``stop``). ``h`` and ``b`` are updated in place."""
    p = h.shape[0]
    ws = cd.where(Gm.H > 0.0)
    l1 = np.empty(p)
    l2 = np.empty(p)
    for k in range(start, stop):
        cd.scale_into(l1, lams[k], l1u)
        cd.scale_into(l2, lams[k], l2u)
        ep, gap = cg.cd_gram(Gm, h, b, ws, l1, l2, opts.positive, opts.form_b, opts.chunk,
                             opts.tol)
        coefs[k] = b
        gaps[k] = gap
        iters[k] = ep
        if gap > opts.tol:
            return k
    return stop


@njit
def predict_step(D, r, st, rr, b, b2, f, l1, l2, ws, nws, r_tmp, moved, delta, bp):
    """Extrapolate the path: ``b + f (b - b2)`` on the support, kept if the objective drops.

    Between knots the lasso path is linear in lam (and the elastic net's
    smooth), so extrapolating from the last two solutions is a far better
    warm start than the last solution alone. Coordinates whose sign would
    flip are set to zero. The support lies in the working set ``ws[:nws]``
    (the strong rule keeps every non-zero); ``rr`` is the current ``||r +
    s||_W^2``. Returns True when the prediction replaced (b, r, s).
    """
    cnt = 0
    dpen = 0.0  # penalty change, over the moved coordinates only
    for t in range(nws):
        j = ws[t]
        v = b[j]
        if v != 0.0:
            v = v + f * (v - b2[j])
            if (v > 0.0) != (b[j] > 0.0):
                v = 0.0
            d = v - b[j]
            if d != 0.0:
                moved[cnt] = j
                delta[cnt] = d
                bp[cnt] = v
                cnt += 1
                dpen += l1[j] * (abs(v) - abs(b[j])) + 0.5 * l2[j] * (v * v - b[j] * b[j])
    if cnt == 0:
        return False
    cd._copy(r_tmp, r)
    s_new = st[0] + cd._axpy_cols(D, moved, delta, cnt, r_tmp)
    new = 0.5 * cd._res_norms(D.w, D.zc, r_tmp, s_new)[0] + dpen
    if new >= 0.5 * rr:
        return False
    cd._copy(r, r_tmp)
    st[0] = s_new
    for t in range(cnt):
        b[moved[t]] = bp[t]
    return True


@njit
def path_residual(D, r, st, b, g, lams, lam_prev, l1u, l2u, opts, coefs, gaps, iters, start,
                  stop):
    """Residual mode over lams[start:stop] (steps 0-3 above); returns the first lam left
    unconverged (or ``stop``). ``r``, ``st``, ``b`` and the full gradient ``g`` (current
    on entry) are updated in place; ``lam_prev < 0`` means no previous lam."""
    p = b.shape[0]
    usable = cd.where(D.H > 0.0)
    nu = usable.shape[0]
    l1 = np.empty(p)
    l2 = np.empty(p)
    in_ws = np.zeros(p, dtype=np.bool_)
    ws_buf = np.empty(p, dtype=np.int64)  # the working set, ws_buf[:nws]
    viol = np.empty(p, dtype=np.int64)
    # without free features (or ridge's form) the gap needs only the dual terms, which
    # the strong-rule scan and the full gradient pass give; else the exact form on usable
    fast_gap = D.free.shape[0] == 0 and not opts.form_b
    g_use = np.empty(0 if fast_gap else nu)
    b_last = b.copy()  # solutions at the last two lams, for the path prediction
    b_last2 = np.zeros(p)
    lam_pp = -1.0
    r_tmp = np.empty(r.shape[0])
    moved = np.empty(p, dtype=np.int64)
    delta = np.empty(p)
    bp = np.empty(p)
    tol = opts.tol
    thr_scale = 1.0  # glmnet's inner threshold, as a fraction of tol (adapted below)
    for k in range(start, stop):
        lam = lams[k]
        nws, dn, l1n, l2n = cd.strong_set(in_ws, ws_buf, D.H, g, b, l1, l2, l1u, l2u, lam,
                                          lam_prev, opts.positive)
        epochs = 0
        # the previous solution may already do here
        rr, zr = cd._res_norms(D.w, D.zc, r, st[0])
        if fast_gap:
            gap = cd.gap_from_terms(rr, zr, rr, dn, l1n, l2n)
        else:
            cd.gather(g_use, g, usable)
            gap = cd.gap_core(rr, zr, D, b, usable, l1, l2, opts.positive, opts.form_b, g_use)
        if gap > tol and lam_pp > lam_prev and not opts.positive:
            f = (lam - lam_prev) / (lam_prev - lam_pp)
            predict_step(D, r, st, rr, b, b_last2, f, l1, l2, ws_buf, nws, r_tmp, moved, delta,
                         bp)
        first = True
        while gap > tol:
            ws = ws_buf[:nws]
            g_ws = np.empty(nws)
            # after a prediction g is the last lam's gradient: good enough to pick the
            # active list (cd_active's sweep of ws and the gap below check it)
            cd.gather(g_ws, g, ws)
            ep = cd.cd_active(D, r, st, b, ws, l1, l2, opts.positive, opts.chunk - epochs,
                              thr_scale * tol, g_ws)
            epochs += ep
            if fast_gap:
                dn, l1n, l2n = cd.grad_gap_terms(D, r, st[0], b, l1, l2, opts.positive, g)
                rr, zr = cd._res_norms(D.w, D.zc, r, st[0])
                gap = cd.gap_from_terms(rr, zr, rr, dn, l1n, l2n)
            else:
                gap = cd.gap_ws(D, r, st[0], b, usable, l1, l2, opts.positive, opts.form_b,
                                g_use)
                cd.scatter(g, usable, g_use)
            if gap <= tol:
                if first:  # met at the first check: glmnet's threshold may loosen again
                    thr_scale = min(thr_scale * 2.0, 1.0)
                break
            first = False
            if epochs >= opts.chunk:
                break
            nv = cd.kkt_violators(viol, in_ws, usable, g, l1, opts.positive)
            if nv == 0:
                # the threshold was too loose for tol here (and, the path being smooth,
                # for the next lams too): tighten it
                thr_scale = max(thr_scale * 0.1, 1e-8)
                continue
            for t in range(nv):  # all violators join (glmnet); the strong rule keeps them few
                in_ws[viol[t]] = True
                ws_buf[nws + t] = viol[t]
            nws += nv
        coefs[k] = b
        gaps[k] = gap
        iters[k] = epochs
        if gap > tol:
            return k
        tmp = b_last2  # swap, then copy: one pass over p instead of two
        b_last2 = b_last
        b_last = tmp
        cd._copy(b_last, b)
        lam_pp = lam_prev
        lam_prev = lam
    return stop
