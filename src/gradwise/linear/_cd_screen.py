"""The path's screening scans, written twice: loops for numba, numpy for Python.

The sequential strong rule picks a lam's working set (and, in the same pass
over the features, gives the dual terms of the gap at the new lam, so that
the previous solution is checked there without a second pass); the KKT scan finds the
usable features outside it that violate their optimality condition; ``where``
lists a mask's indices; ``scale_into``, ``gather`` and ``scatter`` are the
path's O(p) copies. Loaded per backend through `_kernels.load` and used
by `_cd_prims` (and so by `_cd`, `_cd_path`).
"""

from __future__ import annotations

import numpy as np

from ._kernels import decorators, is_jit

JIT = is_jit(__name__)
njit, njit_fast = decorators(JIT)

if JIT:
    @njit
    def strong_set(in_ws, usable, g, b, l1, l2, l1u, lam, lam_prev, positive):
        """Working set of the sequential strong rule (Tibshirani et al. 2012) and, in the
        same pass, the dual terms of the gap at lam: ``(nws, dn, sum l1|b|, sum l2 b^2)``.

        j enters when ``|g_j(lam_prev)| >= (2 lam - lam_prev) l1u_j``, and every
        non-zero and unpenalised feature; ``lam_prev < 0``: none by the rule.
        ``dn = max_j |g_j - l2_j b_j| / l1_j`` over penalised features (signed
        under ``positive``), as `_cd_prims._dual_terms` computes it.
        """
        nws = 0
        dn = 0.0
        l1n = 0.0
        l2n = 0.0
        thr = np.inf if lam_prev < 0.0 else 2.0 * lam - lam_prev
        # in_ws is False off ``usable`` (nothing sets it there), so only usable is written;
        # the indices are read unsigned (no wraparound test) and dn grows without a division
        # per feature: one pass over p, as cheap as it can be
        idx = usable.view(np.uint64)
        for t in range(idx.shape[0]):
            j = idx[t]
            bj = b[j]
            gj = g[j]
            lj = l1[j]
            keep = bj != 0.0 or lj == 0.0 or (gj if positive else abs(gj)) >= thr * l1u[j]
            in_ws[j] = keep
            if keep:
                nws += 1
            if bj != 0.0:
                l1n += lj * abs(bj)
                l2n += l2[j] * bj * bj
                gj = gj - l2[j] * bj
            if lj > 0.0:
                v = gj if positive else abs(gj)
                if v > dn * lj:
                    dn = v / lj
        return nws, dn, l1n, l2n

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
    def strong_set(in_ws, usable, g, b, l1, l2, l1u, lam, lam_prev, positive):
        gs, bu, l1w, l2w = g[usable], b[usable], l1[usable], l2[usable]
        gu = gs if positive else np.abs(gs)
        keep = (bu != 0) | (l1w == 0)
        if lam_prev >= 0.0:
            keep |= gu >= (2.0 * lam - lam_prev) * l1u[usable]
        in_ws[:] = False
        in_ws[usable[keep]] = True
        v = gs - l2w * bu
        v = v if positive else np.abs(v)
        pen = l1w > 0
        dn = float(np.max(v[pen] / l1w[pen])) if pen.any() else 0.0
        return int(keep.sum()), dn, float(l1w @ np.abs(bu)), float(l2w @ (bu * bu))

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
