"""Support recovery: how well a sparse fit finds the true non-zero coefficients."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradwise.errors import DataError


def support_recovery(coef_true: Any, coef_hat: Any, tol: float = 0.0) -> dict[str, float]:
    """Precision and recall of the estimated support ``{j : |coef_hat_j| > tol}``.

    ``precision = |S_true & S_hat| / |S_hat|`` (selected features that are
    real), ``recall = |S_true & S_hat| / |S_true|`` (real features that were
    found). An empty denominator gives 1.0 (nothing selected wrongly /
    nothing to find). The lasso's exact zeros make ``tol=0`` meaningful.

    Example:
        >>> support_recovery([0, 1.5, 0, -2], [0.1, 1.2, 0, -1.9])
        {'precision': 0.6666666666666666, 'recall': 1.0}
    """
    t = np.ravel(np.asarray(coef_true, dtype=float))
    h = np.ravel(np.asarray(coef_hat, dtype=float))
    if t.shape != h.shape:
        raise DataError(f"coef_true has {t.shape[0]} entries but coef_hat has {h.shape[0]}")
    true_s, hat_s = t != 0, np.abs(h) > tol
    hit = float(np.sum(true_s & hat_s))
    n_hat, n_true = float(hat_s.sum()), float(true_s.sum())
    return {
        "precision": hit / n_hat if n_hat else 1.0,
        "recall": hit / n_true if n_true else 1.0,
    }
