"""The innermost kernel primitives, written twice: loops for numba, numpy for Python.

Everything else in `_cd`, `_cd_gram` and `_cd_path` is one source for both
backends; these few functions (a column dot product, a residual norm, the
strong-rule and KKT scans, in `_cd_screen`) are where a scalar Python loop would crawl, so
the plain instance gets their vectorised numpy form. Both forms compute the
same quantities; ``D`` is a `_kernels.Data`.

The coordinate sweep (`_sweep`) and the gradient (`_grad_cols`) are here too:
for numba they branch on sparse/dense once and inline the CSC column loops
(`_cd_screen._dot_sparse`). A sparse column holds a few non-zeros, so a call, a slice or a branch
per column cost several times the arithmetic (3.5x on a 2000×10000 CSR path
with ~3 non-zeros a column). They read the CSC index arrays as unsigned (`_csc`):
a signed index makes numba wrap negative values around on every access (1.4x on a
full sparse gradient).
"""

from __future__ import annotations

import numpy as np

from ._kernels import backend_of, decorators, inline_decorator, is_jit, load

JIT = is_jit(__name__)
njit, njit_fast = decorators(JIT)
njit_inline = inline_decorator(JIT)

# the strong-rule and KKT scans of the path, from their own source (same backend)
_screen = load("_cd_screen", backend_of(JIT))
strong_set, kkt_violators, where = _screen.strong_set, _screen.kkt_violators, _screen.where
scale_into, gather, scatter = _screen.scale_into, _screen.gather, _screen.scatter
grad_gap_terms = _screen.grad_gap_terms
if JIT:  # the column loops the scans share
    _csc, _dot_dense, _dot_sparse = _screen._csc, _screen._dot_dense, _screen._dot_sparse
    _dual_one = _screen._dual_one
else:
    _grad_full = _screen.grad_full


@njit_inline
def _prox(u, l1, denom, positive):
    """argmin_t denom/2 t^2 - u t + l1 |t| (t >= 0 if positive); one source for both backends."""
    if positive:
        return max(u - l1, 0.0) / denom
    if u > l1:
        return (u - l1) / denom
    if u < -l1:
        return (u + l1) / denom
    return 0.0


if JIT:
    # Sparse columns hold a few non-zeros: their loops are inlined into the sweep
    # and index the CSC arrays directly (a call, or a slice, per column costs
    # more than the work). Dense columns are long: column slices, not
    # X[j * n + i], since a computed index may be negative as far as numba knows
    # and its wraparound check stops LLVM from vectorising the loop (6x).
    @njit_inline
    def _axpy_sparse(data, indices, indptr, j, delta, r):
        for k in range(indptr[j], indptr[j + 1]):
            r[indices[k]] -= delta * data[k]

    @njit
    def _axpy_dense(X, n, j, delta, r):
        col = X[j * n:(j + 1) * n]
        for i in range(n):
            r[i] -= delta * col[i]

    @njit
    def _col_dot(D, j, r):
        """sum_i X_ij w_i r_i (raw X, no centring)."""
        if D.sparse:
            data, indices, indptr = _csc(D)
            return _dot_sparse(data, indices, indptr, D.w, j, r)
        return _dot_dense(D.X, D.n, D.w, j, r)

    @njit
    def _col_axpy(D, j, delta, r):
        """r -= delta * X[:, j]."""
        if D.sparse:
            data, indices, indptr = _csc(D)
            _axpy_sparse(data, indices, indptr, j, delta, r)
        else:
            _axpy_dense(D.X, D.n, j, delta, r)

    @njit
    def _axpy_cols(D, idx, delta, cnt, r):
        """r -= sum_k delta[k] X[:, idx[k]] over k < cnt; returns sum_k delta[k] m[idx[k]]."""
        ds = 0.0
        if D.sparse:
            data, indices, indptr = _csc(D)
            for k in range(cnt):
                j = idx[k]
                d = delta[k]
                for t in range(indptr[j], indptr[j + 1]):
                    r[indices[t]] -= d * data[t]
                ds += d * D.m[j]
        else:
            for k in range(cnt):
                j = idx[k]
                _axpy_dense(D.X, D.n, j, delta[k], r)
                ds += delta[k] * D.m[j]
        return ds

    @njit_fast
    def _res_norms(w, zc, r, s):
        """(||r + s||_W^2, zc^T W (r + s))."""
        rr = 0.0
        zr = 0.0
        if w.shape[0] == 0:
            for i in range(r.shape[0]):
                ri = r[i] + s
                rr += ri * ri
                zr += zc[i] * ri
        else:
            for i in range(r.shape[0]):
                ri = r[i] + s
                rr += w[i] * ri * ri
                zr += w[i] * zc[i] * ri
        return rr, zr

    @njit_fast
    def _dot(a, b):
        acc = 0.0
        for i in range(a.shape[0]):
            acc += a[i] * b[i]
        return acc

    @njit
    def _copy(dst, src):
        for i in range(src.shape[0]):
            dst[i] = src[i]

    @njit
    def _row_axpy(h, d, G, j):
        """h -= d * G[j] (G symmetric: row j is column j)."""
        for i in range(h.shape[0]):
            h[i] -= d * G[j, i]

    @njit
    def _grad_cols(D, r, s, idx, out):
        """out[k] = centred gradient X~_j^T W (r + s) for j = idx[k]."""
        c = s * D.wsum
        m, w = D.m, D.w
        ix = idx.view(np.uint64)
        if D.sparse:
            data, indices, indptr = _csc(D)
            for k in range(ix.shape[0]):
                out[k] = _dot_sparse(data, indices, indptr, w, ix[k], r) + c * m[ix[k]]
        else:
            for k in range(ix.shape[0]):
                out[k] = _dot_dense(D.X, D.n, w, ix[k], r) + c * m[ix[k]]

    @njit
    def _sweep_sparse(data, indices, indptr, w, H, m, wsum, r, st, b, idx, nidx, l1, l2,
                      positive):
        # the column loops written out here, one sweep without weights and one with:
        # per coordinate this is a handful of flops, so every branch and call shows
        dmax = 0.0
        s = st[0]
        sw = s * wsum
        unweighted = w.shape[0] == 0
        ix = idx.view(np.uint64)
        for k in range(nidx):
            j = ix[k]
            hj = H[j]
            if hj <= 0.0:
                continue
            bj = b[j]
            a, e = indptr[j], indptr[j + 1]
            g = sw * m[j]
            if unweighted:
                for t in range(a, e):
                    g += data[t] * r[indices[t]]
            else:
                for t in range(a, e):
                    i = indices[t]
                    g += data[t] * w[i] * r[i]
            u = g + hj * bj
            den = hj + l2[j]
            lj = l1[j]
            if u > lj:
                new = (u - lj) / den
            elif u < -lj and not positive:
                new = (u + lj) / den
            else:
                new = 0.0
            d = new - bj
            if d != 0.0:
                for t in range(a, e):
                    r[indices[t]] -= d * data[t]
                s += d * m[j]
                sw = s * wsum
                b[j] = new
                dmax = max(dmax, den * d * d)
        st[0] = s
        return dmax

    @njit
    def _sweep_dense(X, n, w, H, m, wsum, r, st, b, idx, nidx, l1, l2, positive):
        dmax = 0.0
        s = st[0]
        for k in range(nidx):
            j = idx[k]
            hj = H[j]
            if hj <= 0.0:
                continue
            bj = b[j]
            g = _dot_dense(X, n, w, j, r) + s * wsum * m[j]
            new = _prox(g + hj * bj, l1[j], hj + l2[j], positive)
            d = new - bj
            if d != 0.0:
                _axpy_dense(X, n, j, d, r)
                s += d * m[j]
                b[j] = new
                dmax = max(dmax, (hj + l2[j]) * d * d)
        st[0] = s
        return dmax

    @njit
    def _sweep(D, r, st, b, idx, nidx, l1, l2, positive):
        """One cyclic pass over idx[:nidx]; returns the largest (H_j + l2_j) d_j^2.

        The sparse/dense branch is taken once, outside the loop, so that the
        sparse column loops inline into it.
        """
        if D.sparse:
            data, indices, indptr = _csc(D)
            return _sweep_sparse(data, indices, indptr, D.w, D.H, D.m, D.wsum, r, st, b, idx,
                                 nidx, l1, l2, positive)
        return _sweep_dense(D.X, D.n, D.w, D.H, D.m, D.wsum, r, st, b, idx, nidx, l1, l2,
                            positive)

    @njit
    def _dual_terms(g, b, ws, l1, l2, positive, form_b):
        """(dn, sum l1|b|, sum l2 b^2, ridge term) of the gap over ws, g on ws."""
        dn = 0.0
        l1n = 0.0
        l2n = 0.0
        pen_b = 0.0
        ix = ws.view(np.uint64)  # unsigned: no wraparound test per feature
        for k in range(ix.shape[0]):
            j = ix[k]
            bj = b[j]
            if not form_b:
                dn, l1n, l2n = _dual_one(g[k], bj, l1[j], l2[j], positive, dn, l1n, l2n)
                continue
            l1n += l1[j] * abs(bj)
            l2n += l2[j] * bj * bj
            if l2[j] > 0.0:
                v = (g[k] if positive else abs(g[k])) - l1[j]
                if v > 0.0:
                    pen_b += 0.5 * v * v / l2[j]
        return dn, l1n, l2n, pen_b

    @njit_fast
    def grad_dense(X, n, wr, out):
        """out = X^T wr, column by column (X column-major, flattened); one core, no BLAS."""
        for j in range(out.shape[0]):
            col = X[j * n:(j + 1) * n]
            acc = 0.0
            for i in range(n):
                acc += col[i] * wr[i]
            out[j] = acc
else:
    def _col_dot(D, j, r):
        if D.sparse:
            a, e = D.indptr[j], D.indptr[j + 1]
            rows = D.indices[a:e]
            rv = r[rows] if D.w.shape[0] == 0 else r[rows] * D.w[rows]
            return float(D.data[a:e] @ rv)
        v = D.X[j * D.n:(j + 1) * D.n]
        return float(v @ (r if D.w.shape[0] == 0 else D.w * r))

    def _col_axpy(D, j, delta, r):
        if D.sparse:
            a, e = D.indptr[j], D.indptr[j + 1]
            r[D.indices[a:e]] -= delta * D.data[a:e]
        else:
            r -= delta * D.X[j * D.n:(j + 1) * D.n]

    def _axpy_cols(D, idx, delta, cnt, r):
        ds = 0.0
        for k in range(cnt):
            _col_axpy(D, idx[k], delta[k], r)
            ds += delta[k] * D.m[idx[k]]
        return ds

    def _sweep(D, r, st, b, idx, nidx, l1, l2, positive):
        dmax = 0.0
        s = st[0]
        for k in range(nidx):
            j = idx[k]
            hj = D.H[j]
            if hj <= 0.0:
                continue
            bj = b[j]
            g = _col_dot(D, j, r) + s * D.wsum * D.m[j]
            new = _prox(g + hj * bj, l1[j], hj + l2[j], positive)
            d = new - bj
            if d != 0.0:
                _col_axpy(D, j, d, r)
                s += d * D.m[j]
                b[j] = new
                dmax = max(dmax, (hj + l2[j]) * d * d)
        st[0] = s
        return dmax

    def _res_norms(w, zc, r, s):
        rs = r + s
        wr = rs if w.shape[0] == 0 else w * rs
        return float(rs @ wr), float(zc @ wr)

    def _dot(a, b):
        return float(a @ b)

    def _copy(dst, src):
        dst[:] = src

    def _row_axpy(h, d, G, j):
        h -= d * G[j]

    def _grad_cols(D, r, s, idx, out):
        if D.sparse:  # every column in one bincount, then the listed ones
            full = np.empty(D.m.shape[0])
            _grad_full(D, r, s, full)
            out[:] = full[idx]
        else:
            wr = r if D.w.shape[0] == 0 else D.w * r
            out[:] = D.X.reshape((-1, D.n))[idx] @ wr + s * D.wsum * D.m[idx]

    def _dual_terms(g, b, ws, l1, l2, positive, form_b):
        bw, l1w, l2w = b[ws], l1[ws], l2[ws]
        l1n, l2n = float(l1w @ np.abs(bw)), float(l2w @ (bw * bw))
        if form_b:
            v = (g if positive else np.abs(g)) - l1w
            pos = (l2w > 0) & (v > 0)
            return 0.0, l1n, l2n, float(0.5 * np.sum(v[pos] ** 2 / l2w[pos]))
        v = g - l2w * bw
        v = v if positive else np.abs(v)
        pen = l1w > 0
        return (float(np.max(v[pen] / l1w[pen])) if pen.any() else 0.0), l1n, l2n, 0.0

    def grad_dense(X, n, wr, out):
        """out = X^T wr (BLAS gemv) for X column-major, flattened."""
        np.dot(X.reshape((out.shape[0], n)), wr, out=out)
