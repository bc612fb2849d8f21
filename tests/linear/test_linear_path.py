"""enet_path: equality with scikit-learn, monotonicity, lam_max, support recovery."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import linear_model as sk

from gradwise.linear import Lasso, enet_path, support_recovery


def centred(X, y):
    return X - X.mean(0), y - y.mean()


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_path_matches_sklearn_enet_path(diabetes, rel, alpha):
    X, y = centred(*diabetes)
    lams, coefs, gaps = enet_path(X, y, alpha, n_lams=30, fit_intercept=False,
                                  standardize=False, tol=1e-12, max_iter=100_000)
    _, ref, ref_gaps = sk.enet_path(X, y, l1_ratio=alpha, alphas=lams, tol=1e-14,
                                    max_iter=1_000_000)
    assert coefs.shape == (X.shape[1], 30)
    assert rel(coefs, ref) < 1e-5
    # our gaps are on the objective's scale; scikit-learn's are n times larger
    assert np.all(gaps <= 1e-12 * (y @ y) / len(y) + 1e-15)


def test_default_grid_is_glmnets(diabetes):
    X, y = centred(*diabetes)
    lams, coefs, _ = enet_path(X, y, 1.0, n_lams=50, eps=1e-3, fit_intercept=False,
                               standardize=False)
    lam_max = np.max(np.abs(X.T @ y)) / len(y)
    assert lams[0] == pytest.approx(lam_max, rel=1e-8)
    assert lams[-1] == pytest.approx(1e-3 * lam_max, rel=1e-8)
    assert np.allclose(np.diff(np.log(lams)), np.log(1e-3) / 49)
    assert np.all(coefs[:, 0] == 0) and np.any(coefs[:, 1] != 0)


def test_orthogonal_design_is_soft_thresholding():
    # with orthonormal columns (x_j.x_j = n) the lasso is b_j = S(x_j.y / n, lam)
    rng = np.random.default_rng(0)
    n, p = 64, 8
    Q, _ = np.linalg.qr(rng.standard_normal((n, p)))
    X = Q * np.sqrt(n)
    y = X @ np.linspace(-2, 2, p) + rng.standard_normal(n)
    lams, coefs, _ = enet_path(X, y, 1.0, n_lams=40, fit_intercept=False, standardize=False,
                               tol=1e-14)
    z = X.T @ y / n
    expected = np.sign(z)[:, None] * np.maximum(np.abs(z)[:, None] - lams[None, :], 0.0)
    np.testing.assert_allclose(coefs, expected, atol=1e-10)
    nnz = (coefs != 0).sum(axis=0)
    assert np.all(np.diff(nnz) >= 0)  # features only enter as lam decreases


def test_l1_norm_is_monotone_along_the_path(make_sparse):
    # for any convex penalised fit, the penalty at the optimum cannot grow with lam
    X, y, _ = make_sparse(100, 300, 8, rho=0.6, seed=5)
    lams, coefs, _ = enet_path(X, y, 1.0, n_lams=60, eps=1e-2, tol=1e-8)
    l1 = np.abs(coefs).sum(axis=0)
    assert np.all(np.diff(l1) >= -1e-6 * l1.max())
    assert (coefs[:, 0] != 0).sum() == 0 and (coefs[:, -1] != 0).sum() > 8


@pytest.mark.parametrize("shape", [(200, 1000), (1000, 50)])
def test_support_is_recovered(make_sparse, shape):
    X, y, b = make_sparse(*shape, 6, rho=0.3, snr=8.0, seed=6)
    lams, coefs, _ = enet_path(X, y, 1.0, n_lams=60)
    # somewhere on the path the estimated support is exactly the true one
    scores = [support_recovery(b, coefs[:, k]) for k in range(len(lams))]
    assert any(s == {"precision": 1.0, "recall": 1.0} for s in scores)
    # and a moderately regularised lasso keeps every true feature with few extras
    s = support_recovery(b, Lasso(lam=0.1 * lams[0]).fit(X, y).coef_)
    assert s["recall"] == 1.0 and s["precision"] >= 0.5


def test_ridge_path_matches_sklearn_ridge(diabetes, rel):
    X, y = diabetes
    n = len(y)
    lams = np.array([10.0, 1.0, 0.1, 0.01])
    _, coefs, gaps = enet_path(X, y, 0.0, lams, standardize=False)
    for k, lam in enumerate(lams):
        ref = sk.Ridge(alpha=n * lam, solver="cholesky").fit(X, y)
        assert rel(coefs[:, k], ref.coef_) < 1e-9
    assert np.all(gaps < 1e-8)


def test_ridge_path_p_greater_than_n_uses_the_svd(make_sparse, rel):
    X, y, _ = make_sparse(30, 90, 5, seed=7)
    lams = np.geomspace(1.0, 1e-3, 5)
    _, coefs, _ = enet_path(X, y, 0.0, lams, standardize=False)
    for k, lam in enumerate(lams):
        ref = sk.Ridge(alpha=len(y) * lam, solver="svd").fit(X, y)
        assert rel(coefs[:, k], ref.coef_) < 1e-8


def test_positive_path(diabetes, rel):
    X, y = diabetes
    lams, coefs, _ = enet_path(X, y, 1.0, n_lams=20, positive=True, standardize=False,
                               tol=1e-12)
    assert coefs.min() >= 0
    _, ref, _ = sk.enet_path(*centred(X, y), l1_ratio=1.0, alphas=lams, positive=True,
                             tol=1e-14, max_iter=1_000_000)
    assert rel(coefs, ref) < 1e-5


@pytest.mark.parametrize(
    "shape,sparse,weighted,free",
    [((60, 200), False, False, False), ((60, 200), True, True, False),
     ((300, 20), False, False, True), ((80, 150), True, False, True),
     ((300, 20), False, True, False)],
    ids=["dense", "sparse-weighted", "gram-free", "sparse-free", "gram-weighted"],
)
def test_numba_and_numpy_backends_agree(make_sparse, shape, sparse, weighted, free):
    # one kernel source, run compiled and as plain numpy: the same path to round-off
    import scipy.sparse as sps

    from gradwise.linear._kernels import BACKENDS, use_backend

    if "numba" not in BACKENDS:
        pytest.skip("numba not installed")
    X, y, _ = make_sparse(*shape, 5, seed=12)
    X = sps.csc_matrix(X) if sparse else X
    rng = np.random.default_rng(3)
    kw = {"sample_weight": rng.uniform(0.5, 2.0, shape[0]) if weighted else None,
          "penalty_factor": np.r_[0.0, 0.0, np.ones(shape[1] - 2)] if free else None,
          "tol": 1e-14, "max_iter": 100_000}
    out = {}
    for name in ("numba", "numpy"):
        with use_backend(name):
            out[name] = enet_path(X, y, 0.7, n_lams=15, eps=1e-2, **kw)
    lams_a, coefs_a, gaps_a = out["numba"]
    lams_b, coefs_b, gaps_b = out["numpy"]
    np.testing.assert_array_equal(lams_a, lams_b)
    err = np.abs(coefs_a - coefs_b).max() / np.abs(coefs_a).max()
    assert err <= 1e-10, err
    np.testing.assert_array_equal(coefs_a != 0, coefs_b != 0)
    bound = 1e-14 * np.var(y) + 1e-15
    assert gaps_a.max() <= bound and gaps_b.max() <= bound


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_path_equals_dense(make_sparse, fmt, fit_intercept):
    # sparse X stays sparse (implicit centring and scaling) and gives the dense answer
    import scipy.sparse as sps

    X, y, _ = make_sparse(120, 300, 6, seed=21)
    X[np.abs(X) < 1.0] = 0.0  # about 30% non-zeros
    rng = np.random.default_rng(5)
    kw = {"n_lams": 20, "eps": 1e-2, "tol": 1e-13, "fit_intercept": fit_intercept,
          "sample_weight": rng.uniform(0.5, 2.0, 120), "max_iter": 100_000}
    lams, dense, _ = enet_path(X, y, 0.5, **kw)
    _, sparse, gaps = enet_path(sps.csr_matrix(X) if fmt == "csr" else sps.csc_matrix(X), y,
                                0.5, **kw)
    err = np.abs(sparse - dense).max() / np.abs(dense).max()
    assert err < 1e-8, err
    np.testing.assert_array_equal(sparse != 0, dense != 0)
    assert gaps.max() <= 1e-13 * np.var(y) * 2


def test_sparse_logistic_path_equals_dense(make_sparse):
    import scipy.sparse as sps

    from gradwise.linear import logistic_path

    X, f, _ = make_sparse(150, 60, 5, seed=22)
    X[np.abs(X) < 0.8] = 0.0
    y = (f > np.median(f)).astype(int)
    kw = {"n_lams": 10, "eps": 5e-2, "tol": 1e-12, "max_iter": 500}
    _, dense, b_dense, _ = logistic_path(X, y, 0.5, **kw)
    _, sparse, b_sparse, _ = logistic_path(sps.csr_matrix(X), y, 0.5, **kw)
    err = np.abs(sparse - dense).max() / np.abs(dense).max()
    assert err < 1e-6, err
    assert np.abs(b_sparse - b_dense).max() < 1e-6 * max(1.0, np.abs(b_dense).max())
