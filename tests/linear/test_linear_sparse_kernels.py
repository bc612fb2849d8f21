"""The sparse coordinate-descent primitives against scipy, on both backends.

The numba kernels read the CSC index arrays and the feature lists through
unsigned views (no wraparound test per non-zero); these tests pin what they
compute on a working set in arbitrary order, with empty columns, with and
without observation weights, and check the strong-rule scan's dual norm.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gradwise.linear import _kernels
from gradwise.linear._enet import kernel_data
from gradwise.linear._problem import make_problem


def _problem(weighted, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(60, 200, density=0.02, format="csr", random_state=seed,
                  data_rvs=rng.standard_normal)  # ~30% of the columns are empty
    y = rng.standard_normal(60)
    w = rng.uniform(0.5, 2.0, 60) if weighted else None
    prob = make_problem(X, y, w, True)
    return X, prob, kernel_data(prob, np.empty(0, dtype=np.int64)), rng


def _centred_grad(X, prob, r, s):
    """X~^T W (r + s) with X~ = X - 1 m^T, from the dense matrix."""
    Xc = X.toarray() - prob.m
    wr = (r + s) if prob.w.shape[0] == 0 else prob.w * (r + s)
    return Xc.T @ wr


@pytest.mark.parametrize("backend", _kernels.BACKENDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_on_a_shuffled_working_set_matches_dense(backend, weighted):
    X, prob, D, rng = _problem(weighted)
    cd = _kernels.load("_cd", backend)
    # a residual of an optimal intercept: sum_i w_i (r_i + s) = 0 (the kernels rely on it)
    r, s = rng.standard_normal(prob.n), 0.3
    r -= np.average(r, weights=None if prob.w.shape[0] == 0 else prob.w) + s
    idx = rng.permutation(prob.p)[:120].astype(np.int64)
    out = np.empty(idx.shape[0])
    cd._grad_cols(D, r, s, idx, out)
    np.testing.assert_allclose(out, _centred_grad(X, prob, r, s)[idx], rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", _kernels.BACKENDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_sweep_keeps_residual_and_meets_each_coordinates_optimality(backend, weighted):
    """After one sweep, r + s is still zc - X~ b, and the last coordinate swept is optimal."""
    X, prob, D, rng = _problem(weighted, seed=1)
    cd = _kernels.load("_cd", backend)
    b, st, r = np.zeros(prob.p), np.zeros(1), prob.zc.copy()
    l1 = np.full(prob.p, 0.05 * prob.wsum)
    l2 = np.full(prob.p, 0.02 * prob.wsum)
    idx = rng.permutation(prob.p).astype(np.int64)
    cd._sweep(D, r, st, b, idx, idx.shape[0], l1, l2, False)
    assert np.count_nonzero(b) > 0
    Xc = X.toarray() - prob.m
    np.testing.assert_allclose(r + st[0], prob.zc - Xc @ b, rtol=0, atol=1e-12)
    usable = np.flatnonzero(prob.H > 0)
    j = [k for k in idx if prob.H[k] > 0][-1]
    g = _centred_grad(X, prob, r, st[0])[j]
    if b[j] != 0:
        assert g - l2[j] * b[j] == pytest.approx(l1[j] * np.sign(b[j]), abs=1e-10)
    else:
        assert abs(g) <= l1[j] * (1 + 1e-12)
    assert usable.shape[0] < prob.p  # empty columns were in the sweep and were skipped


@pytest.mark.parametrize("backend", _kernels.BACKENDS)
def test_strong_scan_dual_norm_is_the_max_ratio(backend):
    _, prob, _, rng = _problem(False, seed=2)
    cd = _kernels.load("_cd", backend)
    p = prob.p
    usable = np.flatnonzero(prob.H > 0).astype(np.int64)
    g = rng.standard_normal(p)
    b = np.where(rng.random(p) < 0.2, rng.standard_normal(p), 0.0)
    b[prob.H <= 0] = 0.0
    l1u = rng.uniform(0.5, 2.0, p)
    l1u[usable[3]] = 0.0  # an unpenalised feature: in the set, not in the dual norm
    l2u = 0.3 * l1u
    lam, lam_prev = 0.4, 0.5
    l1, l2 = np.full(p, np.nan), np.full(p, np.nan)
    in_ws = np.ones(p, dtype=np.bool_)  # stale marks are overwritten, unusable ones cleared
    ws = np.full(p, -1, dtype=np.int64)
    nws, dn, l1n, l2n = cd.strong_set(in_ws, ws, prob.H, g, b, l1, l2, l1u, l2u, lam, lam_prev,
                                      False)
    np.testing.assert_allclose(l1, lam * l1u, rtol=1e-15)
    np.testing.assert_allclose(l2, lam * l2u, rtol=1e-15)
    u = usable
    keep = (b[u] != 0) | (l1u[u] == 0) | (np.abs(g[u]) >= (2 * lam - lam_prev) * l1u[u])
    pen = u[l1[u] > 0]
    assert np.array_equal(np.flatnonzero(in_ws), np.sort(u[keep]))
    assert nws == keep.sum()
    assert np.array_equal(ws[:nws], u[keep])  # listed in index order
    assert dn == pytest.approx(np.max(np.abs(g[pen] - l2[pen] * b[pen]) / l1[pen]), rel=1e-14)
    assert l1n == pytest.approx(l1[u] @ np.abs(b[u]), rel=1e-12)
    assert l2n == pytest.approx(l2[u] @ b[u] ** 2, rel=1e-12)


@pytest.mark.parametrize("backend", _kernels.BACKENDS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("positive", [False, True])
def test_full_gradient_pass_gives_every_gradient_and_the_gap_terms(backend, weighted, positive):
    """`grad_gap_terms`: the centred gradient of all p features (empty columns included,
    where it is 0) and the dual terms over the usable ones, as the strong scan has them."""
    X, prob, D, rng = _problem(weighted, seed=3)
    cd = _kernels.load("_cd", backend)
    p = prob.p
    r, s = rng.standard_normal(prob.n), -0.2
    r -= np.average(r, weights=None if prob.w.shape[0] == 0 else prob.w) + s
    b = np.where(rng.random(p) < 0.3, rng.uniform(0.1, 1.0, p), 0.0)
    b[prob.H <= 0] = 0.0
    l1 = rng.uniform(0.5, 2.0, p)
    l2 = rng.uniform(0.0, 1.0, p)
    g = np.full(p, np.nan)
    dn, l1n, l2n = cd.grad_gap_terms(D, r, s, b, l1, l2, positive, g)
    full = _centred_grad(X, prob, r, s)
    np.testing.assert_allclose(g, full, rtol=0, atol=1e-12)
    u = prob.H > 0
    assert not u.all()  # the problem has empty columns, and they were skipped
    v = g[u] - l2[u] * b[u]
    v = v if positive else np.abs(v)
    assert dn == pytest.approx(max(0.0, np.max(v / l1[u])), rel=1e-13)
    assert l1n == pytest.approx(l1[u] @ np.abs(b[u]), rel=1e-12)
    assert l2n == pytest.approx(l2[u] @ b[u] ** 2, rel=1e-12)
    # the same terms as the strong scan computes from this gradient
    in_ws, ws = np.zeros(p, dtype=np.bool_), np.empty(p, dtype=np.int64)
    l1c, l2c = np.empty(p), np.empty(p)
    _, dn_s, l1n_s, l2n_s = cd.strong_set(in_ws, ws, prob.H, g, b, l1c, l2c, l1, l2, 1.0, -1.0,
                                          positive)
    assert (dn_s, l1n_s, l2n_s) == pytest.approx((dn, l1n, l2n), rel=1e-14)
