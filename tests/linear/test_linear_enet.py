"""ElasticNet and Lasso against scikit-learn (same objective, tight tolerance)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import linear_model as sk

from gradwise.linear import ElasticNet, Lasso
from gradwise.linear._kernels import BACKENDS, use_backend

TIGHT = {"tol": 1e-12, "max_iter": 100_000}


def sk_enet(lam, alpha, **kw):
    return sk.ElasticNet(alpha=lam, l1_ratio=alpha, tol=1e-14, max_iter=1_000_000, **kw)


@pytest.mark.parametrize("lam,alpha", [(0.1, 1.0), (1.0, 1.0), (0.05, 0.5), (0.5, 0.2)])
def test_diabetes_matches_sklearn(diabetes, objective, rel, lam, alpha):
    X, y = diabetes
    ours = ElasticNet(lam=lam, alpha=alpha, standardize=False, **TIGHT).fit(X, y)
    ref = sk_enet(lam, alpha).fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-5
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-7)
    assert objective(X, y, ours.coef_, ours.intercept_, lam, alpha) <= objective(
        X, y, ref.coef_, ref.intercept_, lam, alpha) + 1e-9
    assert ours.dual_gap_ <= 1e-12 * np.var(y)


def test_lasso_is_alpha_one(diabetes, rel):
    X, y = diabetes
    a = Lasso(lam=0.3, standardize=False, **TIGHT).fit(X, y)
    b = sk.Lasso(alpha=0.3, tol=1e-14, max_iter=1_000_000).fit(X, y)
    assert rel(a.coef_, b.coef_) < 1e-5
    assert np.array_equal(a.coef_ == 0, b.coef_ == 0)  # the same features selected


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_p_greater_than_n(make_sparse, objective, rel, alpha):
    X, y, _ = make_sparse(40, 120, 5, seed=1)
    lam = 0.2
    ours = ElasticNet(lam=lam, alpha=alpha, standardize=False, **TIGHT).fit(X, y)
    ref = sk_enet(lam, alpha).fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-5
    assert objective(X, y, ours.coef_, ours.intercept_, lam, alpha) <= objective(
        X, y, ref.coef_, ref.intercept_, lam, alpha) + 1e-9


def test_sparse_X_equals_dense_and_sklearn(make_sparse, rel):
    rng = np.random.default_rng(3)
    X = sp.random(80, 150, density=0.1, random_state=3, format="csr")
    y = X @ rng.standard_normal(150) + rng.standard_normal(80)
    dense = ElasticNet(lam=0.02, alpha=0.7, standardize=False, **TIGHT).fit(X.toarray(), y)
    sparse = ElasticNet(lam=0.02, alpha=0.7, standardize=False, **TIGHT).fit(X, y)
    ref = sk_enet(0.02, 0.7).fit(X, y)
    assert rel(sparse.coef_, dense.coef_) < 1e-9
    assert rel(sparse.coef_, ref.coef_) < 1e-5
    assert sparse.intercept_ == pytest.approx(ref.intercept_, rel=1e-7)


def test_sample_weight_matches_sklearn(diabetes, rel):
    X, y = diabetes
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    ours = ElasticNet(lam=0.05, alpha=0.6, standardize=False, **TIGHT).fit(X, y, w)
    ref = sk_enet(0.05, 0.6).fit(X, y, sample_weight=w)
    assert rel(ours.coef_, ref.coef_) < 1e-5
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-7)


def test_standardize_is_fit_on_scaled_columns(diabetes, rel):
    # glmnet: standardise with the 1/n standard deviation, report on the original scale
    X, y = diabetes
    X = X * np.arange(1, 11)  # columns on different scales
    sd = X.std(0)
    ours = ElasticNet(lam=0.3, alpha=0.5, standardize=True, **TIGHT).fit(X, y)
    ref = sk_enet(0.3, 0.5).fit((X - X.mean(0)) / sd, y)
    assert rel(ours.coef_, ref.coef_ / sd) < 1e-5
    assert np.allclose(ours.predict(X), ref.predict((X - X.mean(0)) / sd), rtol=1e-7)


def test_penalty_factor_is_column_rescaling_for_lasso(diabetes, rel):
    # lam * pf_j |b_j| with b'_j = pf_j b_j is a lasso on X_j / pf_j
    X, y = diabetes
    pf = np.linspace(0.5, 2.0, X.shape[1])
    ours = Lasso(lam=0.2, penalty_factor=pf, standardize=False, **TIGHT).fit(X, y)
    ref = sk.Lasso(alpha=0.2, tol=1e-14, max_iter=1_000_000).fit(X / pf, y)
    assert rel(ours.coef_, ref.coef_ / pf) < 1e-5


def test_zero_penalty_factor_leaves_feature_unpenalised(diabetes):
    X, y = diabetes
    pf = np.ones(X.shape[1])
    pf[3] = 0.0
    m = Lasso(lam=50.0, penalty_factor=pf, standardize=False, **TIGHT).fit(X, y)
    r = y - m.predict(X)
    assert m.coef_[3] != 0
    assert np.count_nonzero(m.coef_) == 1  # lam above lam_max for every other feature
    assert abs(X[:, 3] @ r) / len(y) < 1e-8  # stationarity of the unpenalised coordinate


def test_positive_matches_sklearn(diabetes, rel):
    X, y = diabetes
    ours = Lasso(lam=0.05, positive=True, standardize=False, **TIGHT).fit(X, y)
    ref = sk.Lasso(alpha=0.05, positive=True, tol=1e-14, max_iter=1_000_000).fit(X, y)
    assert ours.coef_.min() >= 0
    assert rel(ours.coef_, ref.coef_) < 1e-5


def test_no_intercept_matches_sklearn(diabetes, rel):
    X, y = diabetes
    ours = ElasticNet(lam=0.05, alpha=0.9, fit_intercept=False, standardize=False,
                      **TIGHT).fit(X, y)
    ref = sk_enet(0.05, 0.9, fit_intercept=False).fit(X, y)
    assert ours.intercept_ == 0.0
    assert rel(ours.coef_, ref.coef_) < 1e-5


def test_warm_start_reuses_previous_solution(make_sparse):
    X, y, _ = make_sparse(200, 500, 10, seed=2)
    m = Lasso(lam=0.05, warm_start=True, tol=1e-8)
    cold = m.fit(X, y).n_iter_
    coef = m.coef_.copy()
    warm = m.fit(X, y).n_iter_
    assert warm < cold
    np.testing.assert_allclose(m.coef_, coef, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(300, 20), (30, 80)])  # covariance and residual modes
def test_backends_agree(make_sparse, rel, backend, shape):
    X, y, _ = make_sparse(*shape, 4, seed=4)
    with use_backend(backend):
        ours = ElasticNet(lam=0.05, alpha=0.8, **TIGHT).fit(X, y)
        sparse = ElasticNet(lam=0.05, alpha=0.8, **TIGHT).fit(sp.csc_matrix(X), y)
    ref = ElasticNet(lam=0.05, alpha=0.8, **TIGHT).fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-8
    assert rel(sparse.coef_, ref.coef_) < 1e-8


def test_works_without_numba(tmp_path):
    # numba is optional: with it blocked the numpy kernels take over, same answers
    import subprocess
    import sys

    code = """
import sys
sys.modules["numba"] = None
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet as Ref
from gradwise.linear import ElasticNet, _kernels
assert _kernels.BACKENDS == ("numpy",) and _kernels.backend() == "numpy"
X, y = load_diabetes(return_X_y=True)
ours = ElasticNet(lam=0.05, alpha=0.7, standardize=False, tol=1e-12).fit(X, y)
ref = Ref(alpha=0.05, l1_ratio=0.7, tol=1e-14, max_iter=10**6).fit(X, y)
err = np.abs(ours.coef_ - ref.coef_).max() / np.abs(ref.coef_).max()
assert err < 1e-5, err
assert "numba" not in [m for m in sys.modules if sys.modules[m] is not None]
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize(("value", "expect"), [("numpy", "numpy"), ("gpu", "ConfigError")])
def test_backend_env_var(tmp_path, value, expect):
    # GRADWISE_LINEAR_BACKEND forces a backend for the process; an unknown name is refused
    import os
    import subprocess
    import sys

    code = """
from gradwise.errors import ConfigError
from gradwise.linear import _kernels
try:
    print(_kernels.backend(), _kernels.kernels().__name__)
except ConfigError as exc:
    print("ConfigError", exc)
"""
    env = {**os.environ, "GRADWISE_LINEAR_BACKEND": value}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    words = out.stdout.split()
    assert words[0] == expect
    if expect == "numpy":
        assert words[1] == "gradwise.linear._cd_numpy"
    else:
        assert "GRADWISE_LINEAR_BACKEND='gpu'" in out.stdout and "numpy" in out.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_path_equals_dense_path_with_weights(backend):
    # the sparse sweep (implicit centring, weights) against the dense one, along a path
    from gradwise.linear import enet_path

    rng = np.random.default_rng(7)
    Xs = sp.random(60, 150, density=0.05, format="csr", random_state=7,
                   data_rvs=rng.standard_normal)
    X = Xs.toarray()
    y = X[:, :5] @ rng.normal(size=5) + 0.1 * rng.normal(size=60)
    w = rng.uniform(0.5, 2.0, size=60)
    kw = {"alpha": 0.5, "n_lams": 30, "eps": 0.01, "tol": 1e-12, "max_iter": 100_000,
          "sample_weight": w}
    with use_backend(backend):
        lams_s, coef_s, gaps_s = enet_path(Xs, y, **kw)
        lams_d, coef_d, _ = enet_path(X, y, **kw)
    np.testing.assert_allclose(lams_s, lams_d, rtol=1e-12)
    scale = np.abs(coef_d).max()
    assert np.abs(coef_s - coef_d).max() <= 1e-7 * scale, np.abs(coef_s - coef_d).max()
    assert np.all(gaps_s <= 1e-12 * np.sum(w * (y - np.average(y, weights=w)) ** 2) / w.sum())


def test_stale_numba_cache_is_dropped(tmp_path, monkeypatch):
    # numba keys a cached kernel by its own file only: a changed primitive in another
    # kernel source must not leave old machine code behind
    from gradwise.linear import _kernels

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    old = tmp_path / "_cd._sweep-10.py311.nbi"
    other = tmp_path / "unrelated.nbi"
    old.write_text("x")
    other.write_text("x")
    (tmp_path / "gradwise_kernels.sha256").write_text("not the sources' hash")
    monkeypatch.setattr(_kernels, "_checked", [])
    _kernels._drop_stale_cache()
    assert not old.exists() and other.exists()
    old.write_text("x")  # the stamp now matches: the cache is kept
    monkeypatch.setattr(_kernels, "_checked", [])
    _kernels._drop_stale_cache()
    assert old.exists()
