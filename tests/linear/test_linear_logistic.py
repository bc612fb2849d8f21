"""LogisticRegression against scikit-learn (C = 1 / (n * lam), l1_ratio = alpha)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import linear_model as sk
from sklearn.datasets import load_iris

from gradwise.linear import LogisticRegression

TIGHT = {"tol": 1e-10, "standardize": False}


def sk_logit(n, lam, alpha, solver="saga", sw_sum=None, **kw):
    C = 1.0 / ((n if sw_sum is None else sw_sum) * lam)
    tol = 1e-14 if solver == "lbfgs" else 1e-10  # saga is slow; 1e-10 gives ~1e-7 rel. error
    return sk.LogisticRegression(C=C, l1_ratio=alpha, solver=solver, tol=tol,
                                 max_iter=200_000, **kw)


def logit_objective(X, y, coef, b0, lam, alpha):
    eta = X @ coef.ravel() + b0
    loss = np.mean(np.logaddexp(0.0, eta) - y * eta)
    return loss + lam * (alpha * np.abs(coef).sum() + 0.5 * (1 - alpha) * np.sum(coef**2))


@pytest.mark.parametrize("lam,alpha,solver", [
    pytest.param(0.01, 1.0, "saga", marks=pytest.mark.slow),  # saga needs seconds here
    (0.01, 0.0, "lbfgs"),
    (0.01, 0.5, "saga"),
])
def test_binary_matches_sklearn(cancer, rel, lam, alpha, solver):
    X, y = cancer
    ours = LogisticRegression(lam=lam, alpha=alpha, **TIGHT).fit(X, y)
    ref = sk_logit(len(y), lam, alpha, solver).fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-5
    assert logit_objective(X, y, ours.coef_, ours.intercept_, lam, alpha) <= logit_objective(
        X, y, ref.coef_, ref.intercept_, lam, alpha) + 1e-9
    assert ours.intercept_[0] == pytest.approx(ref.intercept_[0], rel=1e-5)


@pytest.mark.parametrize("lam", [0.01, 0.002])
def test_l1_without_intercept_matches_liblinear(cancer, rel, lam):
    # liblinear penalises an intercept, so compare the models without one
    X, y = cancer
    ours = LogisticRegression(lam=lam, alpha=1.0, fit_intercept=False, **TIGHT).fit(X, y)
    ref = sk.LogisticRegression(C=1.0 / (len(y) * lam), l1_ratio=1.0, solver="liblinear",
                                fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-5
    assert logit_objective(X, y, ours.coef_, 0.0, lam, 1.0) <= logit_objective(
        X, y, ref.coef_, 0.0, lam, 1.0) + 1e-9


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_multinomial_matches_sklearn(rel, alpha):
    X, y = load_iris(return_X_y=True)
    ours = LogisticRegression(lam=0.01, alpha=alpha, **TIGHT).fit(X, y)
    ref = sk_logit(len(y), 0.01, alpha, "lbfgs" if alpha == 0 else "saga").fit(X, y)
    assert ours.coef_.shape == (3, 4) and ours.intercept_.shape == (3,)
    assert rel(ours.coef_, ref.coef_) < 1e-5
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-5, atol=1e-7)


def test_sample_weight_and_sparse_match_sklearn(cancer, rel):
    X, y = cancer
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    ours = LogisticRegression(lam=0.005, alpha=1.0, fit_intercept=False, **TIGHT)
    ours.fit(Xs, y, sample_weight=w)
    ref = sk.LogisticRegression(C=1.0 / (w.sum() * 0.005), l1_ratio=1.0, solver="liblinear",
                                fit_intercept=False, tol=1e-12, max_iter=100_000)
    ref.fit(Xs, y, sample_weight=w)
    assert rel(ours.coef_, ref.coef_) < 1e-5
    dense = LogisticRegression(lam=0.005, alpha=1.0, **TIGHT).fit(Xs.toarray(), y, w)
    sparse = LogisticRegression(lam=0.005, alpha=1.0, **TIGHT).fit(Xs, y, w)
    assert rel(sparse.coef_, dense.coef_) < 1e-8
    assert sparse.intercept_[0] == pytest.approx(dense.intercept_[0], rel=1e-8)


def test_standardize_and_string_labels(cancer):
    X, y = cancer
    X = X * np.linspace(1, 100, X.shape[1])
    labels = np.where(y == 1, "benign", "malignant")
    m = LogisticRegression(lam=0.01, alpha=1.0).fit(X, labels)
    assert list(m.classes_) == ["benign", "malignant"]
    ref = LogisticRegression(lam=0.01, alpha=1.0, standardize=False).fit(X / X.std(0), labels)
    np.testing.assert_allclose(m.coef_ * X.std(0), ref.coef_, rtol=1e-6, atol=1e-9)
    proba = m.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_allclose(np.exp(m.predict_log_proba(X)), proba, rtol=1e-12, atol=1e-15)
    assert np.array_equal(m.predict(X), m.classes_[proba.argmax(1)])


def test_l1_path_sparsity_and_duality_gap(cancer):
    X, y = cancer
    nnz = [np.count_nonzero(LogisticRegression(lam=lam, alpha=1.0).fit(X, y).coef_)
           for lam in (0.2, 0.05, 0.01)]
    assert nnz[0] < nnz[1] < nnz[2]
    m = LogisticRegression(lam=0.05, alpha=1.0, tol=1e-6).fit(X, y)
    assert 0.0 <= m.dual_gap_ <= 1e-6 * 2 * 0.66  # tol * null deviance / n


def test_warm_start_and_positive(cancer):
    X, y = cancer
    m = LogisticRegression(lam=0.02, alpha=0.5, warm_start=True, tol=1e-8)
    cold = m.fit(X, y).n_iter_
    coef = m.coef_.copy()
    assert m.fit(X, y).n_iter_ < cold
    np.testing.assert_allclose(m.coef_, coef, rtol=1e-6, atol=1e-9)
    pos = LogisticRegression(lam=0.02, alpha=1.0, positive=True).fit(X, y)
    assert pos.coef_.min() >= 0 and np.count_nonzero(pos.coef_) > 0
