"""The gaussian path's glmnet-style inner stopping keeps the duality-gap guarantee.

The path sweeps the active set to glmnet's coefficient-change threshold and
checks the gap only then; whatever the threshold does, every lam's answer
must stay within ``tol * var(y)`` of the optimum (the gap bounds the
suboptimality). Checked against a tight path and against scikit-learn.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import linear_model as sk

from gradwise.linear import enet_path
from gradwise.linear._kernels import BACKENDS, use_backend


def _sparse_problem(n=300, p=1500, density=0.01, seed=0):
    """Like the benchmark's sparse CSR problem: p > n, ending with more non-zeros than rows."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, p, density=density, format="csr", random_state=seed,
                  data_rvs=rng.standard_normal)
    b = np.zeros(p)
    b[rng.choice(p, 20, replace=False)] = 2 * rng.standard_normal(20)
    y = np.asarray(X @ b).ravel() + rng.standard_normal(n)
    return X, y / y.std()


def _objectives(X, y, coefs, lams, alpha):
    xbar = np.asarray(X.mean(axis=0)).ravel()
    b0 = y.mean() - xbar @ coefs
    R = y[:, None] - np.asarray(X @ coefs) - b0[None, :]
    pen = alpha * np.abs(coefs).sum(0) + 0.5 * (1 - alpha) * (coefs**2).sum(0)
    return 0.5 * np.mean(R**2, axis=0) + lams * pen


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("tol", [3e-3, 1e-6])
def test_every_lam_meets_tol_against_tight_path(backend, tol):
    X, y = _sparse_problem()
    lams, ref, _ = enet_path(X, y, alpha=0.5, n_lams=60, standardize=False, tol=1e-12)
    with use_backend(backend):
        _, coefs, gaps = enet_path(X, y, alpha=0.5, lams=lams, standardize=False, tol=tol)
    bound = tol * y.var()
    f, f_ref = _objectives(X, y, coefs, lams, 0.5), _objectives(X, y, ref, lams, 0.5)
    assert np.all(gaps <= bound), gaps.max() / bound
    excess = f - f_ref
    assert np.all(excess >= -1e-12), excess.min()
    assert np.all(excess <= bound * (1 + 1e-9)), f"excess {excess.max():.3g} > {bound:.3g}"
    assert (ref[:, -1] != 0).sum() > X.shape[0] // 2  # the hard end of the path is reached


def test_tight_sparse_path_matches_sklearn():
    X, y = _sparse_problem(seed=1)
    lams, coefs, _ = enet_path(X, y, alpha=0.5, n_lams=30, standardize=False, tol=1e-12)
    Xc = X.toarray() - np.asarray(X.mean(axis=0))
    _, c_sk, _ = sk.enet_path(Xc, y - y.mean(), l1_ratio=0.5, alphas=lams, tol=1e-14,
                              max_iter=1_000_000)
    f, f_sk = _objectives(X, y, coefs, lams, 0.5), _objectives(X, y, c_sk, lams, 0.5)
    assert np.all(f <= f_sk + 1e-10 * np.abs(f_sk)), (f - f_sk).max()
