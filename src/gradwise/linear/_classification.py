"""LogisticRegression: binary and multinomial, L1/L2/elastic-net penalised (glmnet)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, log_softmax
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from gradwise.errors import DataError

from ._base import ALPHA, COMMON_CONSTRAINTS, LAM, GlmnetBase, LinearPredictMixin
from ._logistic import LogitData, fit_logistic, make_logit_data


def encode_targets(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, Y): Y (n, 1) of 0/1 for two classes, else (n, K) one-hot."""
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
        raise DataError(
            f"LogisticRegression needs samples of at least 2 classes; y has only one class: "
            f"{classes[0]!r}"
        )
    if classes.shape[0] == 2:
        return classes, (codes == 1).astype(np.float64)[:, None]
    return classes, np.eye(classes.shape[0])[codes]


def logit_weights(data: LogitData, penalty_factor: Any,
                  standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """(w1, w2) penalty weights as in `_problem.penalty_weights`."""
    from ._validation import check_penalty_factor

    pf = check_penalty_factor(penalty_factor, data.p)
    pf = np.ones(data.p) if pf is None else pf
    if not standardize:
        return pf.copy(), pf.copy()
    return pf * data.sd, pf * data.sd**2


def to_original_intercept(data: LogitData, coef: np.ndarray, b0: np.ndarray) -> np.ndarray:
    """Intercepts for raw X (the solver centres dense X).

    Multinomial intercepts are only defined up to a common shift (the softmax
    ignores it); they are centred to sum to zero, as scikit-learn's are.
    """
    b = b0 - coef @ data.x_mean
    return b - b.mean() if b.shape[0] > 1 else b


class LogisticRegression(LinearPredictMixin, ClassifierMixin, GlmnetBase):
    """Penalised logistic regression, binary or multinomial (glmnet's objective).

    Minimises, over intercepts b0 (K,) and coefficients B (K, p)::

        -1/n sum_i log p(y_i | x_i) + lam * sum_k (alpha ||B_k||_1 + (1-alpha)/2 ||B_k||^2)

    with the sigmoid for two classes (K = 1 row) and the softmax over K >= 3
    classes (one row per class, as glmnet's multinomial family and
    scikit-learn's multinomial loss). In scikit-learn's terms ``C = 1/(n *
    lam)`` and ``l1_ratio = alpha``: ``LogisticRegression(lam=a, alpha=r,
    standardize=False)`` equals ``sklearn.linear_model.LogisticRegression(
    C=1/(n*a), l1_ratio=r, solver="saga")`` (``C = 1/(sum(w) * a)`` with
    sample weights).

    Solved by proximal Newton: IRLS quadratic models of the loss minimised by
    coordinate descent on a working set, with a backtracking line search;
    stopped when the duality gap is <= tol * null deviance / n.

    Args:
        lam: penalty strength (>= 0). alpha: L1/L2 mix in [0, 1].
        fit_intercept, standardize, penalty_factor, positive, warm_start: as
            in `ElasticNet`.
        tol: relative duality-gap tolerance. max_iter: Newton iterations.

    Attributes:
        classes_, coef_, intercept_: the labels, (1, p) or (K, p), (1,) or (K,).
        dual_gap_, n_iter_: as in `ElasticNet`.

    Example:
        >>> from sklearn.datasets import load_breast_cancer
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> clf = LogisticRegression(lam=0.01, alpha=1.0).fit(X, y)
        >>> bool(clf.score(X, y) > 0.95), int((clf.coef_ != 0).sum()) < 30
        (True, True)
    """

    _parameter_constraints = {"lam": LAM, "alpha": ALPHA, **COMMON_CONSTRAINTS,
                              "warm_start": ["boolean"]}

    def __init__(
        self,
        lam: float = 0.01,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        standardize: bool = True,
        penalty_factor: Any = None,
        positive: bool = False,
        warm_start: bool = False,
        tol: float = 1e-4,
        max_iter: int = 100,
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

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit on X (n, p), dense or sparse, and class labels y (n,); returns self."""
        X, y, sw = self._prepare_fit(X, y, sample_weight, dtype=(np.float64, np.float32))
        classes, Y = encode_targets(y)
        keep = None if sw is None else sw > 0
        if keep is not None and not keep.all():  # zero weight == row removed
            X, Y, sw = X[keep], Y[keep], sw[keep]
        data = make_logit_data(X, sw, self.fit_intercept)
        _, w1, w2 = self._penalty_weights(data.sd)
        init = (None, None)
        if self.warm_start and getattr(self, "coef_", None) is not None:
            if self.coef_.shape == (Y.shape[1], data.p):
                init = (self.coef_, self.intercept_ + self.coef_ @ data.x_mean)
        res = fit_logistic(data, Y, float(self.lam), float(self.alpha), w1, w2,
                           fit_intercept=self.fit_intercept, positive=self.positive,
                           tol=self.tol, max_iter=self.max_iter, coef_init=init[0],
                           intercept_init=init[1], polish=True)
        self.classes_ = classes
        self.coef_ = res.coef
        self.intercept_ = to_original_intercept(data, res.coef, res.intercept)
        self.dual_gap_ = res.gap
        self.n_iter_ = res.n_iter
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Linear scores: (n,) for two classes (log-odds of ``classes_[1]``), else (n, K)."""
        z = self._linear(X)
        return z[:, 0] if z.shape[1] == 1 else z

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class for each row."""
        z = self.decision_function(X)
        idx = (z > 0).astype(int) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes)."""
        z = self.decision_function(X)
        if z.ndim == 1:
            p1 = expit(z)
            return np.column_stack([1.0 - p1, p1])
        return np.exp(log_softmax(z, axis=1))

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of `predict_proba`, computed stably."""
        z = self.decision_function(X)
        if z.ndim == 1:
            return np.column_stack([-np.logaddexp(0.0, z), -np.logaddexp(0.0, -z)])
        return log_softmax(z, axis=1)
