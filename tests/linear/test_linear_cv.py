"""ElasticNetCV / LogisticRegressionCV: CV curves, lam_min, the one-standard-error rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import linear_model as sk
from sklearn.metrics import log_loss
from sklearn.model_selection import KFold, StratifiedKFold

from gradwise.linear import (
    ElasticNet,
    ElasticNetCV,
    LogisticRegression,
    LogisticRegressionCV,
    one_se_rule,
    support_recovery,
)


def test_one_se_rule_by_hand():
    lams = np.array([8.0, 4.0, 2.0, 1.0, 0.5])
    mean = np.array([10.0, 6.0, 5.0, 4.0, 4.5])
    se = np.array([1.0, 1.0, 1.0, 1.5, 1.0])
    # minimum at lam=1 (4.0); within 4.0 + 1.5: lams 2 (5.0) and 4 (6.0 > 5.5: no)
    assert one_se_rule(lams, mean, se) == (3, 2)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_cv_curve_matches_sklearn(diabetes, alpha):
    X, y = diabetes
    ours = ElasticNetCV(alpha=alpha, n_lams=30, cv=5, standardize=False, tol=1e-10).fit(X, y)
    ref = sk.ElasticNetCV(l1_ratio=alpha, alphas=ours.lams_, cv=KFold(5), tol=1e-12,
                          max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(ours.cv_mean_, ref.mse_path_.mean(axis=1), rtol=1e-6)
    assert ours.lam_min_ == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-7 * np.abs(ref.coef_).max())
    # the refit equals a plain fit at lam_min
    single = ElasticNet(lam=ours.lam_min_, alpha=alpha, standardize=False, tol=1e-12).fit(X, y)
    np.testing.assert_allclose(ours.coef_, single.coef_, rtol=1e-8, atol=1e-10)


def test_cv_attributes_and_1se(make_sparse):
    X, y, b = make_sparse(150, 400, 5, snr=6.0, seed=11)
    cv = ElasticNetCV(alpha=1.0, n_lams=40, cv=4, select="1se").fit(X, y)
    assert cv.cv_mean_.shape == cv.cv_std_.shape == cv.cv_se_.shape == (40,)
    assert cv.cv_errors_.shape == (4, 40)
    np.testing.assert_allclose(cv.cv_se_, cv.cv_std_ / 2.0)
    i_min = int(np.argmin(cv.cv_mean_))
    assert cv.lam_min_ == cv.lams_[i_min] and cv.lam_1se_ >= cv.lam_min_
    assert cv.cv_mean_[list(cv.lams_).index(cv.lam_1se_)] <= cv.cv_mean_[i_min] + cv.cv_se_[i_min]
    assert cv.lam_ == cv.lam_1se_
    assert cv.coef_path_.shape[1] == list(cv.lams_).index(cv.lam_) + 1
    # the sparser 1se model still finds the true features, with few false ones
    s = support_recovery(b, cv.coef_)
    assert s["recall"] == 1.0 and s["precision"] >= 0.5


def test_alpha_list_picks_the_best(diabetes):
    X, y = diabetes
    cv = ElasticNetCV(alpha=[0.1, 0.5, 1.0], n_lams=20, cv=3).fit(X, y)
    assert cv.cv_mean_per_alpha_.shape == (3, 20)
    best = int(np.argmin(cv.cv_mean_per_alpha_.min(axis=1)))
    assert cv.alpha_ == [0.1, 0.5, 1.0][best]


def test_ridge_cv_uses_the_svd_path(diabetes):
    X, y = diabetes
    cv = ElasticNetCV(alpha=0.0, n_lams=12, cv=5, standardize=False).fit(X, y)
    for k in (0, 6, 11):  # each fold's error equals scikit-learn's Ridge(alpha = n_train lam)
        for f, (tr, te) in enumerate(KFold(5).split(X)):
            ref = sk.Ridge(alpha=len(tr) * cv.lams_[k]).fit(X[tr], y[tr])
            mse = np.mean((y[te] - ref.predict(X[te])) ** 2)
            assert cv.cv_errors_[f, k] == pytest.approx(mse, rel=1e-9)


def test_logistic_cv_deviance_matches_log_loss(cancer):
    X, y = cancer
    folds = list(StratifiedKFold(3).split(X, y))
    cv = LogisticRegressionCV(alpha=1.0, n_lams=8, cv=folds, tol=1e-10).fit(X, y)
    k = 5
    for f, (tr, te) in enumerate(folds):
        m = LogisticRegression(lam=cv.lams_[k], alpha=1.0, tol=1e-10).fit(X[tr], y[tr])
        dev = 2 * log_loss(y[te], m.predict_proba(X[te]))
        assert cv.cv_errors_[f, k] == pytest.approx(dev, rel=1e-6)
    assert cv.score(X, y) > 0.95
    assert cv.coef_path_.shape[:2] == (1, X.shape[1])


def test_logistic_cv_misclassification_multiclass():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    cv = LogisticRegressionCV(alpha=0.5, n_lams=10, cv=3, scoring="misclassification").fit(X, y)
    assert np.all((cv.cv_errors_ >= 0) & (cv.cv_errors_ <= 1))
    assert cv.coef_.shape == (3, 4) and cv.score(X, y) > 0.9


@pytest.mark.parametrize("weighted", [False, True])
def test_gram_folds_equal_plain_folds(diabetes, monkeypatch, weighted):
    # folds' Gram matrices come from the all-data one minus the test rows
    from gradwise.linear import _cv

    X, y = diabetes
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(y)) if weighted else None
    kw = {"alpha": 0.8, "n_lams": 15, "cv": 4, "tol": 1e-12}
    fast = ElasticNetCV(**kw).fit(X, y, sample_weight=w)
    monkeypatch.setattr(_cv, "uses_gram", lambda X, n: False)
    plain = ElasticNetCV(**kw).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(fast.cv_errors_, plain.cv_errors_, rtol=1e-7)
    np.testing.assert_allclose(fast.coef_, plain.coef_, rtol=1e-7, atol=1e-9)
