"""Lasso, Ridge and ElasticNet regressors with glmnet's objective."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin

from ._base import ALPHA, COMMON_CONSTRAINTS, LAM, GlmnetBase, LinearPredictMixin
from ._enet import solve_path
from ._path import prepare, ridge_gap
from ._ridge import ridge_solve


class _ElasticNetBase(LinearPredictMixin, RegressorMixin, GlmnetBase):
    """Fit logic shared by ElasticNet, Lasso and Ridge (they differ in alpha)."""

    def _mix(self) -> float:
        raise NotImplementedError

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _ElasticNetBase:
        """Fit on X (n, p), dense or sparse, and y (n,); returns self."""
        X, y, sw = self._prepare_fit(X, y, sample_weight, y_numeric=True)
        prob, w1, w2 = prepare(X, y, sw, self.fit_intercept, self.standardize,
                               self.penalty_factor)
        alpha, lam = float(self._mix()), float(self.lam)
        if alpha == 0.0 and not self.positive:
            coef = ridge_solve(prob, lam, w2)
            self.dual_gap_ = ridge_gap(prob, coef, lam, w2)
            self.n_iter_ = 1  # one direct solve
        else:
            b0 = self._warm_coef((prob.p,))
            res = solve_path(prob, np.array([lam]), alpha, w1, w2, positive=self.positive,
                             tol=self.tol, max_iter=self.max_iter, coef_init=b0,
                             do_polish=True)
            coef = res.coefs[:, 0]
            self.dual_gap_ = float(res.gaps[0])
            self.n_iter_ = int(res.n_iters[0])
        self.coef_ = coef
        self.intercept_ = float(prob.y_mean - prob.x_mean @ coef)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions X @ coef_ + intercept_, shape (n,)."""
        return self._linear(X)


class ElasticNet(_ElasticNetBase):
    """Elastic net: least squares with a mix of L1 and L2 penalties (glmnet's objective).

    Minimises::

        1/(2n) ||y - X b - b0||^2 + lam * (alpha ||b||_1 + (1 - alpha)/2 ||b||_2^2)

    ``alpha = 1`` is the lasso, ``alpha = 0`` ridge. Names follow glmnet and
    the lecture: scikit-learn calls lam ``alpha`` and alpha ``l1_ratio``, so
    ``ElasticNet(lam=a, alpha=r, standardize=False)`` equals
    ``sklearn.linear_model.ElasticNet(alpha=a, l1_ratio=r)``.

    Solved by coordinate descent with warm starts, strong rules, KKT checks
    and active-set cycling (Friedman, Hastie and Tibshirani 2010), stopped at
    a duality gap, then polished by an exact solve on the support.

    Args:
        lam: penalty strength (>= 0).
        alpha: L1/L2 mix in [0, 1].
        fit_intercept: fit an unpenalised intercept b0.
        standardize: penalise the coefficients of unit-variance columns and
            report them on the original scale (glmnet's default; scikit-learn
            does not standardise, so pass False to compare).
        penalty_factor: (p,) per-feature multiplier of the penalty; 0 leaves a
            feature unpenalised. Used as given (glmnet rescales it to sum to p).
        positive: constrain every coefficient to be >= 0.
        warm_start: start from the previous ``coef_`` on refit.
        tol: stop when the duality gap <= tol * ||y - ybar||^2 / n.
        max_iter: maximum number of coordinate-descent epochs.

    Attributes:
        coef_: (p,) coefficients on the original scale. intercept_: float.
        dual_gap_: duality gap at the solution (objective scale).
        n_iter_: coordinate-descent epochs used.

    Example:
        >>> from sklearn.datasets import load_diabetes
        >>> X, y = load_diabetes(return_X_y=True)
        >>> model = ElasticNet(lam=2.0, alpha=0.5).fit(X, y)
        >>> int((model.coef_ == 0).sum())  # features removed by the L1 part
        1
    """

    _parameter_constraints = {"lam": LAM, "alpha": ALPHA, **COMMON_CONSTRAINTS,
                              "warm_start": ["boolean"]}

    def __init__(
        self,
        lam: float = 0.1,
        alpha: float = 0.5,
        *,
        fit_intercept: bool = True,
        standardize: bool = True,
        penalty_factor: Any = None,
        positive: bool = False,
        warm_start: bool = False,
        tol: float = 1e-4,
        max_iter: int = 1000,
    ):
        self.lam = lam
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.penalty_factor = penalty_factor
        self.positive = positive
        self.warm_start = warm_start
        self.tol = tol
        self.max_iter = max_iter

    def _mix(self) -> float:
        return self.alpha


class Lasso(_ElasticNetBase):
    """Lasso: least squares with an L1 penalty; exact zeros select features.

    Minimises ``1/(2n) ||y - X b - b0||^2 + lam ||b||_1``, i.e.
    ``ElasticNet(lam, alpha=1)``. ``Lasso(lam=a, standardize=False)`` equals
    ``sklearn.linear_model.Lasso(alpha=a)``. See `ElasticNet` for the
    arguments and attributes.

    Example:
        >>> from sklearn.datasets import load_diabetes
        >>> X, y = load_diabetes(return_X_y=True)
        >>> int((Lasso(lam=5.0).fit(X, y).coef_ != 0).sum())  # 5 of 10 features kept
        5
    """

    _parameter_constraints = {"lam": LAM, **COMMON_CONSTRAINTS, "warm_start": ["boolean"]}

    def __init__(
        self,
        lam: float = 0.1,
        *,
        fit_intercept: bool = True,
        standardize: bool = True,
        penalty_factor: Any = None,
        positive: bool = False,
        warm_start: bool = False,
        tol: float = 1e-4,
        max_iter: int = 1000,
    ):
        self.lam = lam
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.penalty_factor = penalty_factor
        self.positive = positive
        self.warm_start = warm_start
        self.tol = tol
        self.max_iter = max_iter

    def _mix(self) -> float:
        return 1.0


class Ridge(_ElasticNetBase):
    """Ridge: least squares with an L2 penalty, solved in closed form.

    Minimises ``1/(2n) ||y - X b - b0||^2 + lam/2 ||b||^2``, i.e.
    ``ElasticNet(lam, alpha=0)``. scikit-learn's Ridge puts no 1/(2n) in front
    of the loss: ``Ridge(lam=a, standardize=False)`` equals
    ``sklearn.linear_model.Ridge(alpha=n * a)`` (``alpha=sum(w) * a`` with
    sample weights). Solved by a Cholesky factorisation when p <= n and by the
    SVD (dual form) when p > n; ``positive=True`` uses coordinate descent.

    Example:
        >>> import numpy as np
        >>> X = np.arange(8.0).reshape(4, 2); y = np.array([1.0, 2.0, 3.0, 5.0])
        >>> Ridge(lam=0.0, standardize=False).fit(X, y).predict(X[:1]).round(3)
        array([0.8])
    """

    _parameter_constraints = {"lam": LAM, **COMMON_CONSTRAINTS}

    def __init__(
        self,
        lam: float = 0.1,
        *,
        fit_intercept: bool = True,
        standardize: bool = True,
        penalty_factor: Any = None,
        positive: bool = False,
        tol: float = 1e-4,
        max_iter: int = 1000,
    ):
        self.lam = lam
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.penalty_factor = penalty_factor
        self.positive = positive
        self.tol = tol
        self.max_iter = max_iter

    def _mix(self) -> float:
        return 0.0
