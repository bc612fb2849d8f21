"""Multi-output least squares with a group penalty across the outputs (glmnet's ``mgaussian``).

For Y (n, K) and coefficients B (p, K), one row per feature::

    1/(2n) ||Y - X B - 1 b0^T||_F^2 + lam sum_j (alpha w1_j ||B_j||_2 + (1-alpha)/2 w2_j ||B_j||^2)

The L2 norm of a row couples the outputs: a feature enters or leaves the
model for every output at once (the group lasso over outputs). Solved by
block coordinate descent on a working set: each row update is the group
soft-threshold ``B_j = (1 - l1_j / ||v||)_+ v / (H_j + l2_j)``,
``v = X_j^T R + H_j B_j``; each lam stops on the duality gap, the scalar
one with ``|.|`` replaced by the row norm.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import MultiOutputMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from gradwise.errors import ConfigError, DataError

from ._base import ALPHA, COMMON_CONSTRAINTS, LAM, GlmnetBase
from ._enet import ALPHA_FLOOR
from ._validation import validate_data

if TYPE_CHECKING:
    from sklearn.utils import Tags  # scikit-learn >= 1.6


def _gap(Y: np.ndarray, R: np.ndarray, B: np.ndarray, l1: np.ndarray,
         l2: np.ndarray) -> tuple[float, float, float, float]:
    rr = float(np.sum(R * R))
    yr = float(np.sum(Y * R))
    l1n = float(l1 @ np.linalg.norm(B, axis=1))
    l2n = float(l2 @ np.sum(B * B, axis=1))
    return rr, yr, l1n, l2n


def duality_gap(X: np.ndarray, Y: np.ndarray, R: np.ndarray, B: np.ndarray, l1: np.ndarray,
                l2: np.ndarray) -> float:
    """Gap of the multiplied-out problem ``1/2 ||R||^2 + sum l1 ||B_j|| + l2/2 ||B_j||^2``."""
    rr, yr, l1n, l2n = _gap(Y, R, B, l1, l2)
    V = X.T @ R - l2[:, None] * B
    dn = float(np.max(np.linalg.norm(V, axis=1) / l1)) if l1.shape[0] else 0.0
    s = 1.0 if dn <= 1.0 else 1.0 / dn
    return 0.5 * (1.0 + s * s) * (rr + l2n) - s * yr + l1n


def _epoch(X: np.ndarray, R: np.ndarray, B: np.ndarray, H: np.ndarray, l1: np.ndarray,
           l2: np.ndarray, ws: np.ndarray) -> float:
    dmax = 0.0
    for j in ws:
        if H[j] <= 0.0:
            continue
        xj = X[:, j]
        v = xj @ R + H[j] * B[j]
        nv = float(np.sqrt(v @ v))
        new = (max(0.0, 1.0 - l1[j] / nv) / (H[j] + l2[j])) * v if nv > 0 else 0.0 * v
        d = new - B[j]
        if np.any(d):
            R -= np.outer(xj, d)
            B[j] = new
            dmax = max(dmax, (H[j] + l2[j]) * float(d @ d))
    return dmax


def solve(X: np.ndarray, Y: np.ndarray, B: np.ndarray, l1: np.ndarray, l2: np.ndarray,
          tol_abs: float, max_iter: int, strong: np.ndarray) -> tuple[float, int]:
    """Block CD from ``B`` (in place) on a working set grown by the KKT check."""
    H = np.einsum("ij,ij->j", X, X)
    R = Y - X @ B
    usable = H > 0
    epochs = 0
    G = np.linalg.norm(X.T @ R, axis=1)
    ws_mask = usable & ((np.linalg.norm(B, axis=1) > 0) | (G >= strong))
    while True:
        ws = np.flatnonzero(ws_mask)
        for _ in range(10):
            epochs += 1
            dmax = _epoch(X, R, B, H, l1, l2, ws)
            if dmax <= tol_abs * 1e-3 or epochs >= max_iter:
                break
        gap = duality_gap(X, Y, R, B, l1, l2)
        if gap <= tol_abs or epochs >= max_iter:
            return gap, epochs
        G = np.linalg.norm(X.T @ R - l2[:, None] * B, axis=1)
        viol = usable & ~ws_mask & (G > l1 * (1 + 1e-12))
        ws_mask |= viol


class MultiTaskElasticNet(MultiOutputMixin, RegressorMixin, GlmnetBase):
    """Elastic net for multi-output y with a row-wise group penalty (glmnet's ``mgaussian``).

    Minimises over b0 (K,) and B (p, K)::

        1/(2n) ||Y - X B - 1 b0^T||_F^2 + lam (alpha sum_j ||B_j||_2 + (1-alpha)/2 ||B||_F^2)

    so each feature is selected for all K outputs together.
    ``MultiTaskElasticNet(lam=a, alpha=r, standardize=False)`` equals
    scikit-learn's ``MultiTaskElasticNet(alpha=a, l1_ratio=r)``; with
    ``standardize=True`` (the default, as glmnet's) the penalty applies to
    unit-variance columns and the coefficients are reported on the original
    scale.

    Args:
        lam: penalty strength >= 0.
        alpha: L1/L2 mix in [0, 1] (1 = group lasso).
        fit_intercept, standardize, tol, max_iter: as in `ElasticNet`.
        penalty_factor: (p,) per-feature multiplier, > 0 (free features are
            not supported for multi-output y).

    Attributes:
        coef_: (K, p) (scikit-learn's layout). intercept_: (K,). dual_gap_: the
        duality gap at the solution (objective scale). n_iter_: epochs.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(100, 6)); Y = X[:, :2] @ rng.normal(size=(2, 3))
        >>> m = MultiTaskElasticNet(lam=0.05, alpha=1.0).fit(X, Y)
        >>> (np.abs(m.coef_).sum(axis=0) > 0).tolist()  # the same rows for every output
        [True, True, False, False, False, False]
    """

    _parameter_constraints: dict = {**COMMON_CONSTRAINTS, "lam": LAM, "alpha": ALPHA}

    def __init__(
        self,
        lam: float = 1.0,
        alpha: float = 0.5,
        *,
        fit_intercept: bool = True,
        standardize: bool = True,
        penalty_factor: Any = None,
        positive: bool = False,
        warm_start: bool = False,
        tol: float = 1e-4,
        max_iter: int = 1000,
    ) -> None:
        self.lam = lam
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.penalty_factor = penalty_factor
        self.positive = positive
        self.warm_start = warm_start
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MultiTaskElasticNet:
        """Fit on X (n, p) and Y (n, K); returns self."""
        if sp.issparse(X):
            raise DataError("MultiTaskElasticNet needs a dense X; got a scipy.sparse matrix "
                            "(call .toarray() if it fits in memory)")
        if self.positive:
            raise ConfigError("MultiTaskElasticNet: positive=True is not supported "
                              "(the group penalty has no sign); use positive=False")
        X, Y, sw = self._prepare_fit(X, y, sample_weight, y_numeric=True, multi_output=True)
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim == 1:
            raise DataError("MultiTaskElasticNet needs a 2-D y (n_samples, n_outputs); got a "
                            "1-D y (use ElasticNet for one output)")
        n, p = X.shape
        w = np.ones(n) if sw is None else sw
        wsum = float(w.sum())
        x_mean = (w @ X) / wsum
        y_mean = (w @ Y) / wsum
        Xc = X - x_mean if self.fit_intercept else X.copy()
        Yc = Y - y_mean if self.fit_intercept else Y.copy()
        sd = np.sqrt(np.maximum((w @ (X - x_mean) ** 2) / wsum, 0.0))
        sq = np.sqrt(w)[:, None]
        Xw, Yw = Xc * sq, Yc * sq
        pf, w1, w2 = self._penalty_weights(sd)
        if np.any(pf == 0):
            raise ConfigError("MultiTaskElasticNet: every penalty_factor must be > 0; "
                              "unpenalised features are supported by ElasticNet only")
        if self.standardize:
            Xw[:, sd <= 0] = 0.0
        l1 = wsum * self.lam * self.alpha * w1
        l2 = wsum * self.lam * (1.0 - self.alpha) * w2
        warm = self._warm_coef((Y.shape[1], p))
        B = np.zeros((p, Y.shape[1])) if warm is None else warm.T.copy()
        lmax = float(np.max(np.linalg.norm(Xw.T @ Yw, axis=1) / np.where(w1 > 0, w1, np.inf)))
        lmax /= wsum * max(self.alpha, ALPHA_FLOOR)
        strong = wsum * max(self.alpha, ALPHA_FLOOR) * w1 * (2 * self.lam - lmax)
        tol_abs = max(self.tol * float(np.sum(Yw * Yw)), 1e-300)
        gap, epochs = solve(Xw, Yw, B, l1, l2, tol_abs, int(self.max_iter), strong)
        if gap > tol_abs:
            warnings.warn(f"block coordinate descent did not converge (duality gap "
                          f"{gap / wsum:.3g} > tolerance {tol_abs / wsum:.3g}); increase "
                          f"max_iter or tol", ConvergenceWarning, stacklevel=2)
        self.coef_ = B.T.copy()
        self.intercept_ = (y_mean - x_mean @ B) if self.fit_intercept else np.zeros(Y.shape[1])
        self.dual_gap_ = gap / wsum
        self.n_iter_ = epochs
        return self

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags

    def predict(self, X: Any) -> np.ndarray:
        """(n, K) predictions."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False)
        return np.asarray(X @ self.coef_.T) + self.intercept_
