"""Exact Newton polish of a converged penalised logistic fit.

Once coordinate descent has found the support A and the signs, the
objective restricted to A is smooth (the L1 term is linear there), so
Newton's method with the full Hessian converges quadratically to the exact
optimum. Unknowns are the intercepts and the non-zero entries of ``B``::

    grad_(k,j) = sum_i sw_i (P_ik - Y_ik) x_ij + l1_j s_kj + l2_j B_kj
    H_(k,j),(l,m) = sum_i sw_i P_ik (delta_kl - P_il) x_ij x_im + delta_kl delta_jm l2_j

(binary: one class with the sigmoid, ``P (1 - P)``). The softmax is unchanged
when every class's intercept moves by the same amount, so H is singular along
that direction: the step is the minimum-norm least-squares solution. A step
that would flip a sign is not taken; the caller keeps the result only if its
duality gap is not larger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg as sla

if TYPE_CHECKING:
    from ._logistic import LogitData

_MAX_WORK = 5e8  # n * (unknowns)^2 flops allowed to build the Hessian


def _design(data: LogitData, A: np.ndarray, fit_intercept: bool) -> np.ndarray:
    Z = data.X[:, A]
    Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z)
    return np.column_stack([np.ones(data.n), Z]) if fit_intercept else Z


def newton_polish(data: LogitData, Y: np.ndarray, B: np.ndarray, b0: np.ndarray, l1: np.ndarray,
                  l2: np.ndarray, objective: Callable[[np.ndarray, np.ndarray], float],
                  fit_intercept: bool, binary: bool, steps: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``steps`` Newton iterations on the support; returns improved (B, b0)."""
    K = B.shape[0]
    A = np.flatnonzero((np.any(B != 0, axis=0) | (l1 == 0)) & (data.sd > 0))
    m = A.shape[0] + int(fit_intercept)
    if m == 0 or data.n * (K * m) ** 2 > _MAX_WORK:
        return B, b0
    Z = _design(data, A, fit_intercept)  # (n, m)
    sign = np.sign(B[:, A])
    l1A, l2A = l1[A], l2[A]
    off = int(fit_intercept)

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        T = theta.reshape(K, m)
        B2 = B.copy()
        B2[:, A] = T[:, off:]
        return B2, (T[:, 0].copy() if fit_intercept else b0.copy())

    theta = np.column_stack([b0[:, None], B[:, A]]) if fit_intercept else B[:, A].copy()
    theta = theta.ravel()
    # entries at zero in a class whose feature is active elsewhere stay at zero
    free_B = (B[:, A] != 0) | (l1A == 0)
    free = (np.column_stack([np.ones(K, bool), free_B]) if fit_intercept else free_B).ravel()
    f = objective(*unpack(theta))
    for _ in range(steps):
        T = theta.reshape(K, m)
        eta = Z @ T.T  # (n, K)
        if not fit_intercept:
            eta = eta + b0
        if binary:
            P = 1.0 / (1.0 + np.exp(-eta))
        else:
            P = np.exp(eta - eta.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
        R = data.sw[:, None] * (P - Y)  # (n, K)
        grad = R.T @ Z  # (K, m)
        grad[:, off:] += l1A * sign + l2A * T[:, off:]
        H = np.empty((K * m, K * m))
        for k in range(K):
            for c in range(k, K):
                if binary:
                    d = data.sw * P[:, 0] * (1.0 - P[:, 0])
                else:
                    d = data.sw * P[:, k] * ((k == c) - P[:, c])
                blk = Z.T @ (Z * d[:, None])
                if k == c:
                    blk[off:, off:] += np.diag(l2A)
                H[k * m:(k + 1) * m, c * m:(c + 1) * m] = blk
                H[c * m:(c + 1) * m, k * m:(k + 1) * m] = blk.T
        step = np.zeros(K * m)
        step[free] = -sla.lstsq(H[np.ix_(free, free)], grad.ravel()[free], cond=1e-12)[0]
        new = theta + step
        newT = new.reshape(K, m)[:, off:]
        if np.any((np.sign(newT) != sign) & (sign != 0)):
            break  # the support or a sign would change: the exact system no longer holds
        f_new = objective(*unpack(new))
        if not f_new <= f + 1e-13 * abs(f):  # allow round-off: flat directions still move
            break
        theta, f = new, min(f, f_new)
        if np.max(np.abs(step)) <= 1e-13 * max(1.0, np.max(np.abs(theta))):
            break
    return unpack(theta)
