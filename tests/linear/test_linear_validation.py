"""Bad input gets clear, scikit-learn-style errors naming the field and what is allowed."""

from __future__ import annotations

import numpy as np
import pytest

from gradwise.errors import ConfigError, DataError
from gradwise.linear import (
    ElasticNet,
    ElasticNetCV,
    Lasso,
    LogisticRegression,
    Ridge,
    enet_path,
    support_recovery,
)

X = np.random.default_rng(0).standard_normal((20, 3))
Y = X @ np.array([1.0, 0.0, -1.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("Est", [ElasticNet, Ridge, LogisticRegression])
def test_nan_and_inf_in_X(Est, bad):
    Xb = X.copy()
    Xb[3, 1] = bad
    y = Y if Est is not LogisticRegression else (Y > 0).astype(int)
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        Est().fit(Xb, y)


def test_nan_in_y_and_mismatched_shapes():
    with pytest.raises(ValueError, match="Input y contains NaN"):
        Lasso().fit(X, np.where(np.arange(20) == 2, np.nan, Y))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Lasso().fit(X, Y[:-1])
    m = Lasso().fit(X, Y)
    with pytest.raises(ValueError, match="3 features"):
        m.predict(X[:, :2])


@pytest.mark.parametrize("kw,match", [
    ({"alpha": 1.5}, r"'alpha' must be a float in \[0, 1\]; got 1.5"),
    ({"alpha": -0.1}, r"'alpha' must be a float in \[0, 1\]"),
    ({"lam": -1.0}, r"'lam' must be a float in \[0, inf\); got -1.0"),
    ({"lam": "big"}, r"'lam' must be a float"),
    ({"tol": -1e-4}, r"'tol'"),
    ({"max_iter": 0}, r"'max_iter' must be an int in \[1, inf\)"),
    ({"fit_intercept": "yes"}, r"'fit_intercept' must be a bool"),
])
def test_bad_parameters_are_named(kw, match):
    with pytest.raises(ConfigError, match=match):
        ElasticNet(**kw).fit(X, Y)


def test_bad_parameter_is_also_a_type_error():
    with pytest.raises(TypeError):
        ElasticNet(lam="big").fit(X, Y)


def test_cv_options():
    with pytest.raises(ConfigError, match=r"'select' must be one of 'min', '1se'"):
        ElasticNetCV(select="best").fit(X, Y)
    with pytest.raises(ConfigError, match=r"alpha must be a float in \[0, 1\]"):
        ElasticNetCV(alpha=[0.5, 2.0]).fit(X, Y)


def test_penalty_factor_and_sample_weight_checks():
    with pytest.raises(DataError, match=r"penalty_factor has shape \(2,\); expected \(3,\)"):
        Lasso(penalty_factor=[1.0, 1.0]).fit(X, Y)
    with pytest.raises(DataError, match="penalty_factor must be >= 0"):
        Lasso(penalty_factor=[1.0, -1.0, 1.0]).fit(X, Y)
    with pytest.raises(DataError, match="non-negative"):
        Lasso().fit(X, Y, sample_weight=-np.ones(20))
    with pytest.raises(DataError, match="zero"):
        Lasso().fit(X, Y, sample_weight=np.zeros(20))
    with pytest.raises(DataError, match=r"sample_weight.shape == \(3,\), expected \(20,\)"):
        Lasso().fit(X, Y, sample_weight=np.ones(3))


def test_enet_path_checks():
    with pytest.raises(ConfigError, match=r"alpha must be a float in \[0, 1\]"):
        enet_path(X, Y, alpha=2.0)
    with pytest.raises(ConfigError, match="every lam must be a finite float >= 0"):
        enet_path(X, Y, 1.0, lams=[0.1, -0.1])
    with pytest.raises(ConfigError, match="y must be 1-D"):
        enet_path(X, np.column_stack([Y, Y]))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        enet_path(X, Y[:5])


def test_logistic_needs_two_classes():
    with pytest.raises(DataError, match="at least 2 classes"):
        LogisticRegression().fit(X, np.ones(20))
    with pytest.raises(ValueError, match="Unknown label type"):
        LogisticRegression().fit(X, Y)


def test_support_recovery_shapes():
    with pytest.raises(DataError, match="3 entries but coef_hat has 2"):
        support_recovery([1, 0, 1], [1, 0])
    assert support_recovery([0, 2, 0, 1], [0, 1, 1, 0]) == {"precision": 0.5, "recall": 0.5}
    assert support_recovery([0, 0], [0, 0]) == {"precision": 1.0, "recall": 1.0}
