"""The logistic path's kernels (`_logistic_cd`), its backends, KKT conditions and glmnet's multinomial."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.exceptions import ConvergenceWarning

from gradwise.linear import logistic_path
from gradwise.linear._kernels import BACKENDS, load, use_backend
from gradwise.linear._logistic import make_logit_data


def _objective(X, Y, B, b0, lam, alpha, s):
    """glmnet's objective on raw X, penalty on the scaled coefficients B * s."""
    eta = X @ B.T + b0  # (n, K)
    if Y.shape[1] == 1:
        nll = np.mean(np.logaddexp(0, eta[:, 0]) - Y[:, 0] * eta[:, 0])
    else:
        m = eta.max(1, keepdims=True)
        lse = (m + np.log(np.exp(eta - m).sum(1, keepdims=True)))[:, 0]
        nll = np.mean(lse - (Y * eta).sum(1))
    pen = alpha * np.abs(B) * s + (1 - alpha) / 2 * B**2 * s**2
    return nll + lam * pen.sum()


def _problem(n, p, classes, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 3.0, p) + rng.normal(size=p)
    W = np.zeros((classes, p))
    W[:, :4] = rng.normal(size=(classes, 4)) * 1.5
    eta = X @ W.T
    if classes == 1:
        y = (rng.random(n) < 1 / (1 + np.exp(-eta[:, 0]))).astype(int)
    else:
        P = np.exp(eta - eta.max(1, keepdims=True))
        y = np.array([rng.choice(classes, p=q / q.sum()) for q in P])
    return X, y


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("intercept", [False, True])
def test_col_stats_and_matvec_read_x_in_place(backend, sparse, intercept):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 12))
    X[rng.random(X.shape) < 0.6] = 0.0
    data = make_logit_data(sp.csc_matrix(X) if sparse else X, None, intercept)
    Xs = data.X.toarray() if sparse else np.asarray(data.X)  # what the solver sees
    idx = np.array([7, 0, 3, 11], dtype=np.int64)
    v, u, d = rng.random(40), rng.normal(size=40), rng.normal(size=4)
    with use_backend(backend):
        s1, s2, g = data.col_stats(idx, v, u)
        out = data.matvec(idx, d)
    sub = Xs[:, idx]
    np.testing.assert_allclose(s1, v @ sub, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(s2, v @ sub**2, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(g, u @ sub, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(out, sub @ d, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("classes,sparse", [(1, False), (1, True), (3, False)])
def test_numba_and_numpy_backends_give_the_same_path(classes, sparse):
    if "numba" not in BACKENDS:
        pytest.skip("numba not installed")
    X, y = _problem(80, 25, classes, seed=4)
    X = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X)) if sparse else X
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    out = {}
    for name in ("numba", "numpy"):
        with use_backend(name):
            out[name] = logistic_path(X, y, alpha=0.6, n_lams=12, eps=1e-2, tol=1e-12,
                                      sample_weight=w, max_iter=500)
    (lams_a, ca, ba, ga), (lams_b, cb, bb, gb) = out["numba"], out["numpy"]
    np.testing.assert_allclose(lams_a, lams_b, rtol=1e-12)  # X^T v: BLAS or a loop
    err = np.abs(ca - cb).max() / np.abs(ca).max()
    assert err <= 1e-7, err
    np.testing.assert_allclose(ba, bb, rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(ca != 0, cb != 0)
    assert ga.max() <= 1e-10 and gb.max() <= 1e-10, (ga.max(), gb.max())


def _kkt_residual(X, y, coefs, b0s, lams, alpha, w):
    """Largest violation of the elastic-net KKT conditions (gradient of the objective)."""
    classes = np.unique(y)
    Y = (y == classes[1]).astype(float)[:, None] if coefs.shape[0] == 1 else (
        y[:, None] == classes).astype(float)
    worst = 0.0
    for k, lam in enumerate(lams):
        B, b0 = coefs[..., k], b0s[:, k]
        eta = X @ B.T + b0
        if B.shape[0] == 1:
            P = 1 / (1 + np.exp(-eta))
        else:
            P = np.exp(eta - eta.max(1, keepdims=True))
            P /= P.sum(1, keepdims=True)
        G = -(X.T @ (w[:, None] * (Y - P))).T / w.sum() + lam * (1 - alpha) * B  # (K, p)
        a = lam * alpha
        on = B != 0
        r = np.where(on, np.abs(G + a * np.sign(B)), np.maximum(np.abs(G) - a, 0.0))
        worst = max(worst, float(r.max()))
    return worst


@pytest.mark.parametrize("classes", [1, 3])
def test_path_meets_the_kkt_conditions(classes):
    X, y = _problem(150, 40, classes, seed=7)
    w = np.random.default_rng(2).uniform(0.5, 2.0, 150)
    lams, coefs, b0s, gaps = logistic_path(X, y, alpha=0.5, n_lams=20, standardize=False,
                                           sample_weight=w, tol=1e-10)
    res = _kkt_residual(X, y, coefs, b0s, lams, 0.5, w)
    # a move along one coordinate would lower the objective by res^2 / (2 L), L its
    # curvature (<= 1/4 mean w x^2 + lam (1 - alpha)); the certified gap bounds that
    L = 0.25 * np.max(w @ X**2) / w.sum() + lams[0] * 0.5
    bound = np.sqrt(2 * L * gaps.max())
    assert res <= bound, f"KKT residual {res:.3g} > {bound:.3g} (gaps up to {gaps.max():.3g})"
    assert lams[-1] < 0.01 * lams[0] and np.count_nonzero(coefs[..., -1]) >= 10


def test_default_tolerance_gap_bounds_the_objective_excess():
    X, y = _problem(300, 120, 1, seed=3)
    lams, ref, rb0, _ = logistic_path(X, y, alpha=0.5, n_lams=30, standardize=False,
                                      tol=1e-12, max_iter=500)
    _, c, b0, gaps = logistic_path(X, y, alpha=0.5, lams=lams, standardize=False)
    Y = y[:, None].astype(float)
    s = np.ones(X.shape[1])
    for k, lam in enumerate(lams):
        f = _objective(X, Y, c[..., k], b0[:, k], lam, 0.5, s)
        f_ref = _objective(X, Y, ref[..., k], rb0[:, k], lam, 0.5, s)
        # the duality gap is a certificate: the objective is never further off than it says
        assert -1e-12 <= f - f_ref <= gaps[k] + 1e-12, (k, f - f_ref, gaps[k])


def test_multinomial_path_matches_glmnet_logitnet():
    glmnet = pytest.importorskip("glmnet", reason="python-glmnet is a dev extra")
    X, y = load_wine(return_X_y=True)
    lams, coefs, b0s, _ = logistic_path(X, y, alpha=0.5, n_lams=8, eps=0.02, tol=1e-10)
    g = glmnet.LogitNet(alpha=0.5, lambda_path=lams, n_splits=0, tol=1e-14,
                        max_iter=1_000_000)
    g.fit(X, y)
    s = X.std(0)
    Y = (y[:, None] == np.unique(y)).astype(float)
    for k, lam in enumerate(lams):
        f_ours = _objective(X, Y, coefs[..., k], b0s[:, k], lam, 0.5, s)
        f_ref = _objective(X, Y, g.coef_path_[..., k], g.intercept_path_[:, k], lam, 0.5, s)
        assert f_ours <= f_ref + 1e-9, (k, f_ours, f_ref)
        assert f_ref - f_ours < 1e-5 * max(1.0, f_ref), (k, f_ours, f_ref)
    np.testing.assert_array_equal(np.any(coefs != 0, axis=0), np.any(g.coef_path_ != 0, axis=0))


def test_kernel_module_is_one_source_for_both_backends():
    mods = [load("_logistic_cd", name) for name in BACKENDS]
    for mod in mods:
        assert mod.__file__.endswith("_logistic_cd.py")
    assert [m.JIT for m in mods] == [name == "numba" for name in BACKENDS]


def test_breast_cancer_tight_path_reaches_its_tolerance_at_every_lam():
    # correlated, badly scaled columns: the per-coordinate rule alone stalls here
    X, y = load_breast_cancer(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        _, _, _, gaps = logistic_path(X, y, n_lams=12, eps=0.02, tol=1e-9)
    assert gaps.max() <= 1e-9 * 2 * np.log(2), gaps.max()  # tol * null deviance / n
