"""`logistic_path`: penalised logistic regression along a decreasing grid of lams."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array, check_consistent_length

from ._classification import encode_targets, logit_weights, to_original_intercept
from ._enet import lam_grid
from ._logistic import logistic_lam_max, make_logit_data
from ._logistic import logistic_path as _solve_path
from ._path import check_alpha, check_grid, check_lams
from ._validation import as_float64, check_sample_weight


def logistic_path(
    X: Any,
    y: Any,
    alpha: float = 1.0,
    lams: Any = None,
    *,
    n_lams: int = 100,
    eps: float = 1e-3,
    fit_intercept: bool = True,
    standardize: bool = True,
    penalty_factor: Any = None,
    positive: bool = False,
    sample_weight: Any = None,
    tol: float = 1e-4,
    max_iter: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Binomial or multinomial logistic coefficients along a decreasing grid of lams.

    Minimises, for each lam, glmnet's objective::

        -1/n sum_i sw_i log p(y_i | x_i) + lam sum_k (alpha ||B_k||_1 + (1-alpha)/2 ||B_k||^2)

    (sigmoid for two classes, softmax for K >= 3), by proximal Newton with
    warm starts from the previous lam and strong-rule working sets. X is
    prepared (centred, scaled) once for the whole path. At each lam the result
    equals ``LogisticRegression(lam=..., alpha=alpha, ...)`` to the tolerance.

    Args:
        X: (n, p) dense array or scipy.sparse matrix.
        y: (n,) class labels (two or more classes).
        alpha: L1/L2 mix in [0, 1].
        lams: lams to solve at (sorted decreasing); default a geometric grid of
            ``n_lams`` from lam_max (every penalised coefficient zero) down to
            ``eps * lam_max``.
        standardize, penalty_factor, positive, sample_weight: as in
            `LogisticRegression`; unpenalised features are fitted first.
        tol: stop each lam when the duality gap <= ``tol * null deviance``.

    Returns:
        ``(lams, coefs, intercepts, gaps)``: lams (L,), coefs (K, p, L) on the
        original scale (K = 1 for two classes), intercepts (K, L), duality gaps
        (L,) on the objective's scale.

    Example:
        >>> from sklearn.datasets import load_breast_cancer
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> lams, coefs, b0, gaps = logistic_path(X, y, n_lams=5)
        >>> coefs.shape, int((coefs[..., 0] != 0).sum())  # nothing enters at lam_max
        ((1, 30, 5), 0)
    """
    alpha = check_alpha(alpha)
    X = check_array(X, accept_sparse=("csc", "csr"), dtype=(np.float64, np.float32))
    y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
    check_consistent_length(X, y)
    sw = check_sample_weight(sample_weight, X.shape[0])
    check_grid(n_lams, eps)
    X = as_float64(X)
    if sp.issparse(X):
        X = X.tocsc()
    _, Y = encode_targets(y)
    if sw is not None:
        keep = sw > 0
        if not keep.all():  # zero weight == row removed
            X, Y, sw = X[keep], Y[keep], sw[keep]
    data = make_logit_data(X, sw, fit_intercept)
    w1, w2 = logit_weights(data, penalty_factor, standardize)
    if lams is None:
        lam_arr = lam_grid(logistic_lam_max(data, Y, alpha, w1, positive, fit_intercept),
                           n_lams, eps)
    else:
        lam_arr = check_lams(lams)
    path = _solve_path(data, Y, lam_arr, alpha, w1, w2, fit_intercept=fit_intercept,
                       positive=positive, tol=tol, max_iter=max_iter)
    coefs = np.stack([r.coef for r in path], axis=-1)
    intercepts = np.stack([to_original_intercept(data, r.coef, r.intercept) for r in path],
                          axis=-1)
    gaps = np.array([r.gap for r in path])
    return lam_arr, coefs, intercepts, gaps
