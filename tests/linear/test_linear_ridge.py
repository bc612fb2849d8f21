"""Ridge in closed form against scikit-learn's Ridge (alpha = n * lam) and least squares."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import linear_model as sk

from gradwise.linear import ElasticNet, Ridge


@pytest.mark.parametrize("lam", [1.0, 1e-2, 1e-4])
def test_p_less_than_n_matches_sklearn(diabetes, rel, lam):
    X, y = diabetes
    ours = Ridge(lam=lam, standardize=False).fit(X, y)
    ref = sk.Ridge(alpha=len(y) * lam).fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-9
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-10)
    assert ours.dual_gap_ < 1e-10


def test_p_greater_than_n_matches_sklearn(make_sparse, rel):
    X, y, _ = make_sparse(40, 150, 5, seed=8)
    ours = Ridge(lam=0.05, standardize=False).fit(X, y)
    ref = sk.Ridge(alpha=40 * 0.05, solver="svd").fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-9


def test_sparse_and_weights_match_sklearn(rel):
    rng = np.random.default_rng(9)
    X = sp.random(120, 30, density=0.2, random_state=9, format="csr")
    y = X @ rng.standard_normal(30) + rng.standard_normal(120)
    w = rng.uniform(0.5, 2.0, 120)
    ours = Ridge(lam=0.01, standardize=False).fit(X, y, sample_weight=w)
    ref = sk.Ridge(alpha=w.sum() * 0.01, solver="cholesky").fit(X.toarray(), y, sample_weight=w)
    assert rel(ours.coef_, ref.coef_) < 1e-9
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-9)


def test_lam_zero_is_minimum_norm_least_squares(make_sparse, rel):
    X, y, _ = make_sparse(20, 50, 3, seed=10)
    ours = Ridge(lam=0.0, standardize=False).fit(X, y)
    Xc, yc = X - X.mean(0), y - y.mean()
    assert rel(ours.coef_, np.linalg.lstsq(Xc, yc, rcond=None)[0]) < 1e-8
    np.testing.assert_allclose(ours.predict(X), y, atol=1e-8)  # p > n: interpolates


def test_elastic_net_alpha_zero_is_ridge(diabetes, rel):
    X, y = diabetes
    a = ElasticNet(lam=0.3, alpha=0.0).fit(X, y)
    b = Ridge(lam=0.3).fit(X, y)
    assert rel(a.coef_, b.coef_) < 1e-12


def test_positive_ridge_uses_coordinate_descent(diabetes):
    X, y = diabetes
    m = Ridge(lam=1e-3, positive=True, standardize=False, tol=1e-12, max_iter=100_000).fit(X, y)
    assert m.coef_.min() >= 0 and np.count_nonzero(m.coef_) < X.shape[1]
    # KKT: the gradient vanishes on the positive coordinates and is <= 0 on the zeros
    g = (X - X.mean(0)).T @ (y - m.predict(X)) / len(y) - 1e-3 * m.coef_
    assert np.all(np.abs(g[m.coef_ > 0]) < 1e-6) and np.all(g[m.coef_ == 0] < 1e-6)
