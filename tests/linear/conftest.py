"""Shared data for the gradwise.linear tests: scikit-learn's bundled sets and synthetic ones."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes


def sparse_regression(n, p, k, *, rho=0.3, snr=4.0, seed=0):
    """y = X b + noise with k non-zero b_j and AR(1)-correlated columns (corr rho^|i-j|)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, p))
    X = np.empty((n, p))
    X[:, 0] = Z[:, 0]
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho**2) * Z[:, j]
    b = np.zeros(p)
    idx = rng.choice(p, k, replace=False)
    b[idx] = rng.choice([-1.0, 1.0], k) * rng.uniform(1.0, 2.0, k)
    f = X @ b
    y = f + rng.standard_normal(n) * f.std() / snr + 3.0
    return X, y, b


@pytest.fixture(scope="session")
def diabetes():
    return load_diabetes(return_X_y=True)


@pytest.fixture(scope="session")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture(scope="session")
def make_sparse():
    return sparse_regression


def enet_objective(X, y, b, b0, lam, alpha, sample_weight=None):
    """glmnet's objective, computed directly (the reference for 'objective <=' tests)."""
    w = np.ones(len(y)) if sample_weight is None else sample_weight
    r = y - X @ b - b0
    return 0.5 * (w @ r**2) / w.sum() + lam * (alpha * np.abs(b).sum()
                                               + 0.5 * (1 - alpha) * b @ b)


@pytest.fixture(scope="session")
def objective():
    return enet_objective


def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="session")
def rel():
    return rel_err
