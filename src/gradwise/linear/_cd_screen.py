"""The path's scans over every feature, written twice: loops for numba, numpy for Python.

The sequential strong rule picks a lam's working set (and, in the same pass
over the features, gives the dual terms of the gap at the new lam, so that
the previous solution is checked there without a second pass); the full
gradient pass gives the gap's dual terms with it (`grad_gap_terms`); the
KKT scan finds the usable features outside the set that violate their
optimality condition; ``where`` lists a mask's indices; ``scale_into``,
``gather`` and ``scatter`` are the path's O(p) copies. Loaded per backend
through `_kernels.load` and used by `_cd_prims` (and so by `_cd`, `_cd_path`).
"""

from __future__ import annotations

import numpy as np

from ._kernels import decorators, inline_decorator, is_jit

JIT = is_jit(__name__)
njit, njit_fast = decorators(JIT)
njit_inline = inline_decorator(JIT)

if JIT:
    # the CSC column loops and the dense column dot, shared with `_cd_prims` (which
    # re-exports them): sparse columns hold a few non-zeros, so their loops are written
    # out inline; the index arrays are read unsigned (`_csc`), since a signed index makes
    # numba wrap negative values around on every access (1.4x on a full sparse gradient)
    @njit_inline
    def _csc(D):
        """(data, indices, indptr) with the index arrays viewed as uint64 (no copy)."""
        return D.data, D.indices.view(np.uint64), D.indptr.view(np.uint64)

    @njit_fast
    def _dot_dense(X, n, w, j, r):
        acc = 0.0
        col = X[j * n:(j + 1) * n]
        if w.shape[0] == 0:
            for i in range(n):
                acc += col[i] * r[i]
        else:
            for i in range(n):
                acc += col[i] * w[i] * r[i]
        return acc

    @njit_inline
    def _dot_sparse(data, indices, indptr, w, j, r):
        acc = 0.0
        if w.shape[0] == 0:
            for k in range(indptr[j], indptr[j + 1]):
                acc += data[k] * r[indices[k]]
        else:
            for k in range(indptr[j], indptr[j + 1]):
                i = indices[k]
                acc += data[k] * w[i] * r[i]
        return acc

    @njit_inline
    def _dual_one(gj, bj, lj, l2j, positive, dn, l1n, l2n):
        """Feature j's share of the gap's dual terms: ``dn = max |g_j - l2_j b_j| / l1_j``
        over penalised features (signed under ``positive``, grown without a division per
        feature), ``sum l1|b|`` and ``sum l2 b^2``. No branch on ``b_j != 0`` (a zero adds
        exactly nothing): the non-zeros lie at random, and a mispredicted branch per
        feature cost more than the arithmetic."""
        l1n += lj * abs(bj)
        l2n += l2j * bj * bj
        gj = gj - l2j * bj
        if lj > 0.0:
            v = gj if positive else abs(gj)
            if v > dn * lj:
                dn = v / lj
        return dn, l1n, l2n

    @njit_inline
    def _enters(gj, bj, lj, lim, positive):
        """The strong rule on a usable feature (``lim = (2 lam - lam_prev) l1u_j``): a
        non-zero, an unpenalised feature, or a gradient at the limit. (Scalars in, the
        writes left to the caller: the scan ran 1.6x slower with its arrays written through
        an inlined helper; ``|``, not ``or``: no branches.)"""
        return (bj != 0.0) | (lj == 0.0) | ((gj if positive else abs(gj)) >= lim)

    @njit
    def strong_set(in_ws, ws, H, g, b, l1, l2, l1u, l2u, lam, lam_prev, positive):
        """Working set of the sequential strong rule (Tibshirani et al. 2012) and, in the
        same pass, the dual terms of the gap at lam: ``(nws, dn, sum l1|b|, sum l2 b^2)``.

        Sets ``l1 = lam l1u`` and ``l2 = lam l2u``, marks ``in_ws`` and lists the
        set in ``ws[:nws]``, in index order. Usable (``H > 0``) j enters when
        ``|g_j(lam_prev)| >= (2 lam - lam_prev) l1u_j``, and every non-zero and
        unpenalised feature; ``lam_prev < 0``: none by the rule. ``dn = max_j |g_j
        - l2_j b_j| / l1_j`` over usable penalised features (signed under
        ``positive``), as `_cd_prims._dual_terms` computes it.
        """
        nws = 0
        dn = 0.0
        l1n = 0.0
        l2n = 0.0
        thr = np.inf if lam_prev < 0.0 else 2.0 * lam - lam_prev
        # one pass over p in index order, no feature list to chase: as cheap as it can be
        for j in range(b.shape[0]):
            lj = lam * l1u[j]
            l2j = lam * l2u[j]
            l1[j] = lj
            l2[j] = l2j
            if H[j] <= 0.0:
                in_ws[j] = False
                continue
            keep = _enters(g[j], b[j], lj, thr * l1u[j], positive)
            in_ws[j] = keep
            ws[nws] = j  # written always, kept by the count: no branch to mispredict
            nws += keep
            dn, l1n, l2n = _dual_one(g[j], b[j], lj, l2j, positive, dn, l1n, l2n)
        return nws, dn, l1n, l2n

    @njit
    def grad_full(D, r, s, g):
        """The centred gradient ``g = X~^T W (r + s)`` of every feature, unusable ones too.

        No feature list: the tightest form of the path's costliest pass (an
        index list, or the gap's terms in the same loop, made it 10-15% slower
        on sparse X).
        """
        c = s * D.wsum
        m, w = D.m, D.w  # (the packed D stays out of the loop: numba would count references)
        if D.sparse:
            data, indices, indptr = _csc(D)
            for j in range(g.shape[0]):
                g[j] = _dot_sparse(data, indices, indptr, w, j, r) + c * m[j]
        else:
            for j in range(g.shape[0]):
                g[j] = _dot_dense(D.X, D.n, w, j, r) + c * m[j]

    @njit
    def gap_terms(H, g, b, l1, l2, positive):
        """The gap's dual terms ``(dn, sum l1|b|, sum l2 b^2)`` over usable features (``H > 0``)."""
        dn = 0.0
        l1n = 0.0
        l2n = 0.0
        for j in range(b.shape[0]):
            if H[j] > 0.0:
                dn, l1n, l2n = _dual_one(g[j], b[j], l1[j], l2[j], positive, dn, l1n, l2n)
        return dn, l1n, l2n

    @njit
    def grad_gap_terms(D, r, s, b, l1, l2, positive, g):
        """The full centred gradient into ``g`` (`grad_full`), then the gap's dual terms
        over usable features: ``(dn, sum l1|b|, sum l2 b^2)``."""
        grad_full(D, r, s, g)
        return gap_terms(D.H, g, b, l1, l2, positive)

    @njit
    def kkt_violators(viol, in_ws, usable, g, l1, positive):
        """Usable features outside the working set with ``|g_j| > l1_j``: into viol; count."""
        nv = 0
        for t in range(usable.shape[0]):
            j = usable[t]
            gj = g[j] if positive else abs(g[j])
            if not in_ws[j] and gj > l1[j] * (1.0 + 1e-12):
                viol[nv] = j
                nv += 1
        return nv

    @njit
    def where(mask):
        """Indices of the True entries (int64)."""
        c = 0
        for j in range(mask.shape[0]):
            if mask[j]:
                c += 1
        out = np.empty(c, dtype=np.int64)
        c = 0
        for j in range(mask.shape[0]):
            if mask[j]:
                out[c] = j
                c += 1
        return out
    @njit
    def scale_into(dst, c, src):
        """dst = c * src."""
        for i in range(src.shape[0]):
            dst[i] = c * src[i]

    @njit
    def gather(dst, src, idx):
        """dst[k] = src[idx[k]]."""
        for k in range(idx.shape[0]):
            dst[k] = src[idx[k]]

    @njit
    def scatter(dst, idx, src):
        """dst[idx[k]] = src[k]."""
        for k in range(idx.shape[0]):
            dst[idx[k]] = src[k]
else:
    def _dual_np(g, b, l1, l2, usable, positive):
        gs, bu, l1w, l2w = g[usable], b[usable], l1[usable], l2[usable]
        v = gs - l2w * bu
        v = v if positive else np.abs(v)
        pen = l1w > 0
        dn = float(np.max(v[pen] / l1w[pen])) if pen.any() else 0.0
        return dn, float(l1w @ np.abs(bu)), float(l2w @ (bu * bu))

    def strong_set(in_ws, ws, H, g, b, l1, l2, l1u, l2u, lam, lam_prev, positive):
        np.multiply(l1u, lam, out=l1)
        np.multiply(l2u, lam, out=l2)
        usable = H > 0
        gu = g if positive else np.abs(g)
        keep = usable & ((b != 0) | (l1 == 0))
        if lam_prev >= 0.0:
            keep |= usable & (gu >= (2.0 * lam - lam_prev) * l1u)
        in_ws[:] = keep
        idx = np.flatnonzero(keep)
        ws[:idx.shape[0]] = idx
        return (idx.shape[0], *_dual_np(g, b, l1, l2, usable, positive))

    def grad_full(D, r, s, g):
        wr = r if D.w.shape[0] == 0 else D.w * r
        p = g.shape[0]
        if D.sparse:
            cols = np.repeat(np.arange(p), np.diff(D.indptr))
            g[:] = np.bincount(cols, weights=D.data * wr[D.indices], minlength=p)
        else:
            g[:] = D.X.reshape((p, D.n)) @ wr
        g += s * D.wsum * D.m

    def grad_gap_terms(D, r, s, b, l1, l2, positive, g):
        grad_full(D, r, s, g)
        return _dual_np(g, b, l1, l2, D.H > 0, positive)

    def kkt_violators(viol, in_ws, usable, g, l1, positive):
        gu = g[usable] if positive else np.abs(g[usable])
        v = usable[~in_ws[usable] & (gu > l1[usable] * (1.0 + 1e-12))]
        viol[:v.shape[0]] = v
        return v.shape[0]

    def where(mask):
        return np.flatnonzero(mask).astype(np.int64)

    def scale_into(dst, c, src):
        np.multiply(src, c, out=dst)

    def gather(dst, src, idx):
        dst[:] = src[idx]

    def scatter(dst, idx, src):
        dst[idx] = src
