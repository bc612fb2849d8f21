"""The path's screening scans, written twice: loops for numba, numpy for Python.

The sequential strong rule picks a lam's working set; the KKT scan finds the
usable features outside it that violate their optimality condition; ``where``
lists a mask's indices. Loaded per backend through `_kernels.load` and used
by `_cd_prims` (and so by `_cd`, `_cd_path`).
"""

from __future__ import annotations

import numpy as np

from ._kernels import decorators, is_jit

JIT = is_jit(__name__)
njit, njit_fast = decorators(JIT)

if JIT:
    @njit
    def strong_set(in_ws, usable, g, b, l1, l1u, lam, lam_prev, positive):
        """Working set of the sequential strong rule (Tibshirani et al. 2012); its size.

        j enters when ``|g_j(lam_prev)| >= (2 lam - lam_prev) l1u_j``, and every
        non-zero and unpenalised feature; ``lam_prev < 0``: none by the rule.
        """
        for j in range(in_ws.shape[0]):
            in_ws[j] = False
        nws = 0
        for t in range(usable.shape[0]):
            j = usable[t]
            gj = g[j] if positive else abs(g[j])
            strong = np.inf if lam_prev < 0.0 else (2.0 * lam - lam_prev) * l1u[j]
            if b[j] != 0.0 or l1[j] == 0.0 or gj >= strong:
                in_ws[j] = True
                nws += 1
        return nws

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
else:
    def strong_set(in_ws, usable, g, b, l1, l1u, lam, lam_prev, positive):
        gu = g[usable] if positive else np.abs(g[usable])
        keep = (b[usable] != 0) | (l1[usable] == 0)
        if lam_prev >= 0.0:
            keep |= gu >= (2.0 * lam - lam_prev) * l1u[usable]
        in_ws[:] = False
        in_ws[usable[keep]] = True
        return int(keep.sum())

    def kkt_violators(viol, in_ws, usable, g, l1, positive):
        gu = g[usable] if positive else np.abs(g[usable])
        v = usable[~in_ws[usable] & (gu > l1[usable] * (1.0 + 1e-12))]
        viol[:v.shape[0]] = v
        return v.shape[0]

    def where(mask):
        return np.flatnonzero(mask).astype(np.int64)
