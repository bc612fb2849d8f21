"""Shared pieces of the estimators: tags, data preparation, prediction."""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_is_fitted

from ._validation import (
    Interval,
    as_float64,
    check_penalty_factor,
    check_sample_weight,
    validate_data,
    validate_params,
)

if TYPE_CHECKING:
    from sklearn.utils import Tags  # scikit-learn >= 1.6

# Constraints every glmnet-style estimator shares.
COMMON_CONSTRAINTS: dict[str, list[Any]] = {
    "fit_intercept": ["boolean"],
    "standardize": ["boolean"],
    "penalty_factor": ["array-like", None],
    "positive": ["boolean"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
}
LAM = [Interval(Real, 0, None, closed="left")]
ALPHA = [Interval(Real, 0, 1, closed="both")]


def scaled_weights(pf: np.ndarray | None, sd: np.ndarray,
                   standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature L1 and L2 weights (w1, w2) of glmnet's penalty.

    ``lam * sum_j (alpha w1_j |b_j| + (1 - alpha)/2 w2_j b_j^2)`` with
    ``w1 = pf * sd``, ``w2 = pf * sd^2`` when standardising (fitting on
    ``X / sd`` and rescaling the coefficients is the same fit), else ``pf``;
    ``pf`` None means all ones.
    """
    pf = np.ones(sd.shape[0]) if pf is None else np.asarray(pf, dtype=np.float64)
    if not standardize:
        return pf.copy(), pf.copy()
    return pf * sd, pf * sd * sd


class GlmnetBase(BaseEstimator):
    """Base of the estimators: sparse-input tag and the fit preamble."""

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # pragma: no cover - scikit-learn < 1.6
        return {"X_types": ["2darray", "sparse"]}

    def _prepare_fit(self, X: Any, y: Any, sample_weight: Any,
                     **kw: Any) -> tuple[np.ndarray | sp.spmatrix, np.ndarray, np.ndarray | None]:
        """Validate parameters and data; X as float64 (CSC when sparse)."""
        validate_params(self)
        X, y = validate_data(self, X, y, reset=True, **kw)
        sw = check_sample_weight(sample_weight, X.shape[0])
        X = as_float64(X)
        if sp.issparse(X):
            X = X.tocsc()
        return X, y, sw

    def _penalty_weights(self, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(pf, w1, w2)``: ``penalty_factor`` checked against p = len(sd) (ones if None)
        and the penalty weights of `scaled_weights` under ``standardize``."""
        pf = check_penalty_factor(self.penalty_factor, sd.shape[0])
        pf = np.ones(sd.shape[0]) if pf is None else pf
        return (pf, *scaled_weights(pf, sd, self.standardize))

    def _warm_coef(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """The previous ``coef_`` when ``warm_start`` is set and its shape is ``shape``."""
        coef = getattr(self, "coef_", None)
        if getattr(self, "warm_start", False) and coef is not None and coef.shape == shape:
            return coef
        return None


class LinearPredictMixin:
    """``predict`` / ``decision_function`` = X @ coef_.T + intercept_."""

    def _linear(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_
