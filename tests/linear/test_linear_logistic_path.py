"""Public logistic_path: equals per-lam fits and glmnet's LogitNet path on glmnet's objective."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from gradwise.errors import ConfigError
from gradwise.linear import LogisticRegression, logistic_path


def _objective(X, Y, B, b0, lam, alpha, s):
    eta = X @ B.T + b0  # (n, K)
    if Y.shape[1] == 1:
        nll = np.mean(np.logaddexp(0, eta[:, 0]) - Y[:, 0] * eta[:, 0])
    else:
        m = eta.max(1, keepdims=True)
        lse = (m + np.log(np.exp(eta - m).sum(1, keepdims=True)))[:, 0]
        nll = np.mean(lse - (Y * eta).sum(1))
    pen = alpha * np.abs(B) * s + (1 - alpha) / 2 * B**2 * s**2
    return nll + lam * pen.sum()


@pytest.mark.parametrize("loader,alpha", [(load_breast_cancer, 1.0), (load_wine, 0.5)])
def test_path_equals_per_lam_fits(loader, alpha):
    X, y = loader(return_X_y=True)
    lams, coefs, b0s, gaps = logistic_path(X, y, alpha=alpha, n_lams=6, eps=0.05, tol=1e-8)
    classes = np.unique(y)
    Y = (y == classes[1]).astype(float)[:, None] if len(classes) == 2 else np.eye(3)[y]
    s = X.std(0)
    assert coefs.shape[-1] == 6 and np.all(coefs[..., 0] == 0)
    for k, lam in enumerate(lams):
        m = LogisticRegression(lam=lam, alpha=alpha, tol=1e-8, max_iter=500).fit(X, y)
        f_path = _objective(X, Y, coefs[..., k], b0s[:, k], lam, alpha, s)
        f_fit = _objective(X, Y, m.coef_, m.intercept_, lam, alpha, s)
        assert abs(f_path - f_fit) < 1e-6 * max(1.0, f_fit), (k, f_path, f_fit)
        assert gaps[k] >= 0


def test_path_matches_glmnet_logitnet():
    glmnet = pytest.importorskip("glmnet", reason="python-glmnet is a dev extra")
    X, y = load_breast_cancer(return_X_y=True)
    lams, coefs, b0s, _ = logistic_path(X, y, n_lams=5, eps=0.02, tol=1e-10)
    g = glmnet.LogitNet(alpha=1.0, lambda_path=lams, n_splits=0, tol=1e-14,
                        max_iter=1_000_000)
    g.fit(X, y)
    np.testing.assert_allclose(g.lambda_path_[0], lams[0], rtol=1e-6)
    s = X.std(0)
    Y = y[:, None].astype(float)
    for k, lam in enumerate(lams):
        f_ours = _objective(X, Y, coefs[..., k], b0s[:, k], lam, 1.0, s)
        f_ref = _objective(X, Y, g.coef_path_[..., k], g.intercept_path_[:, k], lam, 1.0, s)
        assert f_ours <= f_ref + 1e-9, (k, f_ours, f_ref)
        assert f_ref - f_ours < 1e-5 * max(1.0, f_ref), (k, f_ours, f_ref)


def test_bad_arguments_name_the_option():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ConfigError, match="n_lams"):
        logistic_path(X, y, n_lams=0)
    with pytest.raises(ConfigError, match="eps"):
        logistic_path(X, y, eps=2.0)
