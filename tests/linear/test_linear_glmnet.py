"""gradwise.linear against the glmnet Fortran (python-glmnet): standardisation and penalty factors.

glmnet standardises y inside gaussian fits (its lambda is on the scale of
y / sd(y)) and rescales penalty factors to sum to p: both are neutralised
here, so that both sides solve glmnet's objective with the same lam. Each
comparison is on the objective (both sides at a tight tolerance) and on the
KKT residual of the penalised problem, printed in every failure message.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from gradwise.linear import Lasso, LogisticRegression, enet_path

glmnet = pytest.importorskip("glmnet", reason="python-glmnet (the glmnet Fortran) is a dev extra")


def _sd(X, w=None):
    w = np.ones(X.shape[0]) if w is None else w
    mu = w @ X / w.sum()
    return np.sqrt(w @ (X - mu) ** 2 / w.sum())


def _objective(X, y, b, b0, lam, alpha, pf, standardize=True):
    """glmnet's gaussian objective with the centred-sd standardisation."""
    s = _sd(X) if standardize else np.ones(X.shape[1])
    r = y - X @ b - b0
    pen = pf * (alpha * s * np.abs(b) + (1 - alpha) / 2 * s**2 * b**2)
    return 0.5 * np.mean(r**2) + lam * pen.sum()


def _kkt(X, y, b, b0, lam, alpha, pf, standardize=True):
    """Largest violation of the lasso/enet optimality conditions (per feature)."""
    s = _sd(X) if standardize else np.ones(X.shape[1])
    g = X.T @ (y - X @ b - b0) / X.shape[0] - lam * (1 - alpha) * pf * s**2 * b
    l1 = lam * alpha * pf * s
    viol = np.where(b != 0, np.abs(g - l1 * np.sign(b)), np.maximum(np.abs(g) - l1, 0.0))
    return float(viol.max())


def _glmnet_gaussian(X, y, lams, alpha, fit_intercept, pf=None):
    """glmnet's path at ``lams``; y must have unit sd (glmnet divides y by its sd, which
    rescales the L2 term relative to the L1 one for alpha < 1)."""
    sy = y.std()
    assert abs(sy - 1.0) < 1e-12
    m = glmnet.ElasticNet(alpha=alpha, lambda_path=np.asarray(lams) / sy,
                          fit_intercept=fit_intercept, standardize=True, n_splits=0,
                          tol=1e-14, max_iter=1_000_000)
    m.fit(X, y / sy, relative_penalties=pf)
    return m.coef_path_ * sy, m.intercept_path_ * sy


def _wine():
    X = load_wine().data
    return np.ascontiguousarray(X[:, 1:]), X[:, 0] / X[:, 0].std()


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_standardize_without_intercept_is_glmnets_centred_sd(alpha):
    X, y = _wine()
    lam = 0.02
    ours = Lasso(lam=lam, fit_intercept=False, tol=1e-12) if alpha == 1.0 else None
    if ours is None:
        from gradwise.linear import ElasticNet

        ours = ElasticNet(lam=lam, alpha=alpha, fit_intercept=False, tol=1e-12)
    ours.fit(X, y)
    coefs, _ = _glmnet_gaussian(X, y, [lam * 10, lam], alpha, False)
    ref = coefs[:, -1]
    pf = np.ones(X.shape[1])
    f_ours = _objective(X, y, ours.coef_, 0.0, lam, alpha, pf)
    f_ref = _objective(X, y, ref, 0.0, lam, alpha, pf)
    kkt = _kkt(X, y, ours.coef_, 0.0, lam, alpha, pf)
    msg = f"objective ours {f_ours!r} glmnet {f_ref!r}; KKT residual ours {kkt:.3g}"
    assert f_ours <= f_ref + 1e-9 * abs(f_ref), msg
    assert f_ref <= f_ours + 1e-7 * abs(f_ref), msg  # glmnet's own stopping rule is looser
    assert kkt < 1e-6, msg
    np.testing.assert_array_equal(ours.coef_ != 0, ref != 0, err_msg=msg)


def test_lam_max_without_intercept_matches_glmnet_grid():
    X, y = _wine()
    lams, _, _ = enet_path(X, y, alpha=1.0, n_lams=5, fit_intercept=False)
    sy = y.std()
    m = glmnet.ElasticNet(alpha=1.0, n_lambda=5, fit_intercept=False, n_splits=0)
    m.fit(X, y / sy)
    np.testing.assert_allclose(lams[0], m.lambda_path_[0] * sy, rtol=1e-6)


def test_logistic_standardize_without_intercept_uses_centred_sd():
    X, y = load_breast_cancer(return_X_y=True)
    lam = 0.01
    ours = LogisticRegression(lam=lam, alpha=1.0, fit_intercept=False, tol=1e-12,
                              max_iter=10000).fit(X, y)
    m = glmnet.LogitNet(alpha=1.0, lambda_path=np.array([lam * 4, lam * 2, lam]),
                        fit_intercept=False, standardize=True, n_splits=0, tol=1e-14,
                        max_iter=1_000_000)
    m.fit(X, y)
    ref = m.coef_path_[0, :, -1]
    s = _sd(X)

    def obj(b):
        eta = X @ b
        return np.mean(np.logaddexp(0, eta) - y * eta) + lam * np.sum(s * np.abs(b))

    f_ours, f_ref = obj(ours.coef_.ravel()), obj(ref)
    msg = f"objective ours {f_ours!r} glmnet {f_ref!r}"
    assert f_ours <= f_ref + 1e-9, msg
    assert abs(f_ours - f_ref) < 1e-6, msg


# --- penalty_factor 0: unpenalised features -------------------------------------------


def test_unpenalised_feature_is_fitted_at_lam_max_and_lam_max_matches_glmnet():
    X, y = load_diabetes(return_X_y=True)
    p = X.shape[1]
    pf = np.ones(p)
    pf[0] = 0.0
    lams, coefs, gaps = enet_path(X, y, alpha=1.0, n_lams=5, penalty_factor=pf, tol=1e-12)
    b = coefs[:, 0]
    # at lam_max only the free feature is non-zero, and it is the least-squares fit
    assert np.all(b[1:] == 0)
    Xc, yc = X - X.mean(0), y - y.mean()
    ls = (Xc[:, 0] @ yc) / (Xc[:, 0] @ Xc[:, 0])
    np.testing.assert_allclose(b[0], ls, rtol=1e-8)
    grad0 = Xc[:, 0] @ (yc - Xc @ b) / X.shape[0]
    assert abs(grad0) < 1e-8, f"gradient on the unpenalised feature {grad0:.3g}"
    assert np.all(gaps >= -1e-12), f"negative duality gaps {gaps}"
    # glmnet's grid: penalty factors are rescaled to sum to p, which scales its lambda
    sy = y.std()
    m = glmnet.ElasticNet(alpha=1.0, n_lambda=5, n_splits=0)
    m.fit(X, y / sy, relative_penalties=pf)
    np.testing.assert_allclose(lams[0], m.lambda_path_[0] * sy * p / pf.sum(), rtol=1e-6)


def test_unpenalised_feature_gap_is_never_negative_and_kkt_holds():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 200))
    y = 3 * X[:, 0] + X[:, 1] + rng.normal(size=50)
    pf = np.ones(200)
    pf[0] = 0.0
    m = Lasso(lam=0.1366, penalty_factor=pf, tol=1e-10, standardize=False).fit(X, y)
    kkt = _kkt(X - X.mean(0), y - y.mean(), m.coef_, 0.0, 0.1366, 1.0, pf, standardize=False)
    assert m.dual_gap_ >= -1e-12, f"gap {m.dual_gap_!r}"  # round-off only
    assert kkt < 1e-6, f"KKT residual {kkt:.3g} with gap {m.dual_gap_:.3g}"


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_unpenalised_features_match_glmnet_objective(alpha):
    X, y = load_diabetes(return_X_y=True)
    y = y / y.std()
    p = X.shape[1]
    pf = np.ones(p)
    pf[[0, 3]] = 0.0
    lam = 0.01
    # glmnet's penalty is lam * (p / sum pf) * pf.
    lam_g = lam * pf.sum() / p
    coefs, b0s = _glmnet_gaussian(X, y, [lam_g * 50, lam_g * 5, lam_g], alpha, True, pf)
    from gradwise.linear import ElasticNet

    ours = ElasticNet(lam=lam, alpha=alpha, penalty_factor=pf, tol=1e-12).fit(X, y)
    f_ours = _objective(X, y, ours.coef_, ours.intercept_, lam, alpha, pf)
    f_ref = _objective(X, y, coefs[:, -1], b0s[-1], lam, alpha, pf)
    kkt = _kkt(X - X.mean(0), y - y.mean(), ours.coef_, 0.0, lam, alpha, pf)
    msg = f"objective ours {f_ours!r} glmnet {f_ref!r}; KKT residual ours {kkt:.3g}"
    assert f_ours <= f_ref + 1e-9 * abs(f_ref), msg
    assert kkt < 1e-5, msg
    np.testing.assert_array_equal(ours.coef_ != 0, coefs[:, -1] != 0, err_msg=msg)


def test_logistic_unpenalised_features_are_fitted():
    X, y = load_breast_cancer(return_X_y=True)
    pf = np.ones(X.shape[1])
    pf[[0, 5, 20]] = 0.0
    lam = 0.04
    m = LogisticRegression(lam=lam, alpha=1.0, penalty_factor=pf, tol=1e-10,
                           max_iter=1000).fit(X, y)
    eta = X @ m.coef_.ravel() + m.intercept_[0]
    p = 1.0 / (1.0 + np.exp(-eta))
    grad = (X - X.mean(0)).T @ (y - p) / X.shape[0]
    free = grad[[0, 5, 20]] / X.std(0)[[0, 5, 20]]  # on the standardised scale
    assert np.abs(free).max() < 1e-6, f"gradients on unpenalised features {free}"
    assert m.dual_gap_ > -1e-12
    # glmnet's objective at glmnet's solution is not below ours
    g = glmnet.LogitNet(alpha=1.0, lambda_path=np.array([lam * pf.sum() / len(pf) * 4,
                                                          lam * pf.sum() / len(pf)]),
                        n_splits=0, tol=1e-14, max_iter=1_000_000)
    g.fit(X, y, relative_penalties=pf)
    s = X.std(0)

    def obj(b, b0):
        e = X @ b + b0
        return np.mean(np.logaddexp(0, e) - y * e) + lam * np.sum(pf * s * np.abs(b))

    f_ours = obj(m.coef_.ravel(), m.intercept_[0])
    f_ref = obj(g.coef_path_[0, :, -1], g.intercept_path_[0, -1])
    assert f_ours <= f_ref + 1e-9, f"objective ours {f_ours!r} glmnet {f_ref!r}"
    assert abs(f_ours - f_ref) < 1e-6 * max(1.0, abs(f_ref)), (f_ours, f_ref)



@pytest.mark.parametrize("alpha", [1.0, 0.5])
@pytest.mark.parametrize("loader", ["diabetes", "wine"])
def test_early_stop_ends_the_path_where_glmnet_does(loader, alpha):
    X, y = load_diabetes(return_X_y=True) if loader == "diabetes" else _wine()
    y = y / y.std()
    g = glmnet.ElasticNet(alpha=alpha, n_lambda=100, min_lambda_ratio=1e-4, n_splits=0,
                          tol=1e-12).fit(X, y)
    lams, coefs, _ = enet_path(X, y, alpha=alpha, n_lams=100, eps=1e-4, early_stop=True,
                               tol=1e-10)
    assert lams.shape[0] == g.lambda_path_.shape[0] < 100
    assert coefs.shape == (X.shape[1], lams.shape[0])
    np.testing.assert_allclose(lams, g.lambda_path_, rtol=1e-6)
    full, full_coefs, _ = enet_path(X, y, alpha=alpha, n_lams=100, eps=1e-4, tol=1e-10)
    assert full.shape[0] == 100  # off by default: every requested lam
    np.testing.assert_allclose(coefs, full_coefs[:, : lams.shape[0]], atol=1e-6)  # both to tol
