"""MultiTaskElasticNet (glmnet's mgaussian) against scikit-learn's MultiTaskElasticNet."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import linear_model as sk
from sklearn.datasets import load_linnerud

from gradwise.errors import ConfigError, DataError
from gradwise.linear import ElasticNet, MultiTaskElasticNet


def _data(seed=0, n=80, p=30, K=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3, size=p)
    B = np.zeros((p, K))
    B[:4] = rng.normal(size=(4, K))
    return X, X @ B + 0.3 * rng.normal(size=(n, K))


def _objective(X, Y, B, b0, lam, alpha, s):
    R = Y - X @ B.T - b0
    pen = alpha * s * np.linalg.norm(B, axis=0) + (1 - alpha) / 2 * s**2 * (B**2).sum(0)
    return 0.5 * np.mean(np.sum(R * R, axis=1)) + lam * pen.sum()


@pytest.mark.parametrize("alpha", [1.0, 0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_scikit_learn_without_standardisation(alpha, seed):
    X, Y = _data(seed)
    lam = 0.1
    ours = MultiTaskElasticNet(lam=lam, alpha=alpha, standardize=False, tol=1e-12).fit(X, Y)
    ref = sk.MultiTaskElasticNet(alpha=lam, l1_ratio=alpha, tol=1e-12, max_iter=100000).fit(X, Y)
    ones = np.ones(X.shape[1])
    f_ours = _objective(X, Y, ours.coef_, ours.intercept_, lam, alpha, ones)
    f_ref = _objective(X, Y, ref.coef_, ref.intercept_, lam, alpha, ones)
    assert f_ours <= f_ref + 1e-9 * f_ref, (f_ours, f_ref)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    np.testing.assert_array_equal(np.any(ours.coef_ != 0, 0), np.any(ref.coef_ != 0, 0))
    assert ours.dual_gap_ >= -1e-12


def test_standardised_fit_is_the_fit_on_scaled_columns():
    X, Y = load_linnerud(return_X_y=True)
    s = X.std(0)
    ours = MultiTaskElasticNet(lam=0.3, alpha=1.0, tol=1e-12).fit(X, Y)
    scaled = MultiTaskElasticNet(lam=0.3, alpha=1.0, standardize=False, tol=1e-12).fit(X / s, Y)
    np.testing.assert_allclose(ours.coef_, scaled.coef_ / s, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.predict(X), scaled.predict(X / s), rtol=1e-8, atol=1e-8)


def test_one_output_equals_the_elastic_net():
    X, Y = _data(2, K=1)
    mt = MultiTaskElasticNet(lam=0.05, alpha=0.7, tol=1e-12).fit(X, Y)
    en = ElasticNet(lam=0.05, alpha=0.7, tol=1e-12).fit(X, Y[:, 0])
    np.testing.assert_allclose(mt.coef_[0], en.coef_, atol=1e-7)


def test_weights_equal_repeated_rows():
    X, Y = _data(3, n=40)
    w = np.arange(40) % 3 + 1.0
    a = MultiTaskElasticNet(lam=0.1, tol=1e-12).fit(X, Y, sample_weight=w)
    idx = np.repeat(np.arange(40), w.astype(int))
    b = MultiTaskElasticNet(lam=0.1, tol=1e-12).fit(X[idx], Y[idx])
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-7)


def test_bad_input_names_what_is_allowed():
    X, Y = _data()
    with pytest.raises(DataError, match="2-D y"):
        MultiTaskElasticNet().fit(X, Y[:, 0])
    with pytest.raises(ConfigError, match="penalty_factor"):
        MultiTaskElasticNet(penalty_factor=np.r_[0.0, np.ones(29)]).fit(X, Y)
    import scipy.sparse as sp

    with pytest.raises(DataError, match="dense X"):
        MultiTaskElasticNet().fit(sp.csr_matrix(X), Y)


def test_penalty_factor_and_warm_start_as_the_elastic_net():
    # the shared GlmnetBase preparation: penalty factors scale the standardised
    # weights the same way, and a warm start resumes from the previous coef_
    X, Y = _data(4, K=1)
    pf = np.linspace(0.5, 2.0, X.shape[1])
    mt = MultiTaskElasticNet(lam=0.05, alpha=0.6, penalty_factor=pf, tol=1e-12).fit(X, Y)
    en = ElasticNet(lam=0.05, alpha=0.6, penalty_factor=pf, tol=1e-12).fit(X, Y[:, 0])
    np.testing.assert_allclose(mt.coef_[0], en.coef_, atol=1e-7)
    warm = MultiTaskElasticNet(lam=0.05, alpha=0.6, penalty_factor=pf, tol=1e-12,
                               warm_start=True).fit(X, Y)
    first = warm.n_iter_
    warm.fit(X, Y)
    assert warm.n_iter_ < first, (warm.n_iter_, first)
    np.testing.assert_allclose(warm.coef_, mt.coef_, atol=1e-9)
