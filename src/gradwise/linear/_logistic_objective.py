"""The penalised logistic objective: loss, probabilities, penalty, duality gap, class shift.

Binary models use the sigmoid with one row of coefficients; multinomial
models the softmax with one row per class (glmnet's symmetric form).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.special import expit, xlogy

if TYPE_CHECKING:
    from ._logistic import LogitData


def penalty(B: np.ndarray, l1: np.ndarray, l2: np.ndarray) -> float:
    """sum_k sum_j l1_j |B_kj| + l2_j / 2 B_kj^2 (unnormalised weights)."""
    return float(np.sum(np.abs(B) @ l1) + 0.5 * np.sum((B * B) @ l2))


def logsumexp(eta: np.ndarray) -> np.ndarray:
    """Row-wise log(sum(exp(eta))), stable (scipy's is slow on small arrays)."""
    mx = eta.max(axis=1)
    return mx + np.log(np.exp(eta - mx[:, None]).sum(axis=1))


def loss(eta: np.ndarray, Y: np.ndarray, sw: np.ndarray, binary: bool) -> float:
    """sum_i sw_i (-log p(y_i)) for linear scores eta (n, K) and targets Y (n, K)."""
    if binary:  # log(1 + e^eta) - y eta
        return float(sw @ (np.logaddexp(0.0, eta[:, 0]) - Y[:, 0] * eta[:, 0]))
    return float(sw @ (logsumexp(eta) - np.sum(Y * eta, axis=1)))


def probs(eta: np.ndarray, binary: bool) -> np.ndarray:
    """Sigmoid (binary) or row-wise softmax of the scores."""
    if binary:
        return expit(eta)
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)


def duality_gap(data: LogitData, eta: np.ndarray, P: np.ndarray, Y: np.ndarray, B: np.ndarray,
                b0: np.ndarray, l1: np.ndarray, l2: np.ndarray, positive: bool,
                binary: bool, V: np.ndarray | None = None,
                primal: float | None = None) -> tuple[float, np.ndarray]:
    """Fenchel duality gap (unnormalised) and the gradient V = X^T sw (Y - P), (K, p).

    ``V`` and ``primal``, when given, are that gradient and the objective
    already computed at this ``eta``.

    With the intercept held at b0, the dual point ``theta = s * sw (Y - P)``
    (``s`` in (0, 1] keeps ``|X_j^T theta| <= l1_j`` where there is no L2
    term) gives ``D = -sum_i sw_i H(q_i) - b0 . sum_i theta_i - G*(X^T theta)``
    with ``q = s P + (1 - s) Y`` (a probability vector for every s),
    ``H(q) = sum_k q_k log q_k`` (binary: plus the (1 - q) term) and
    ``G*(v) = sum_j (|v_j| - l1_j)_+^2 / (2 l2_j)``. Weak duality makes
    ``primal - D >= 0`` and it is 0 exactly at the optimum.
    """
    R = data.sw[:, None] * (Y - P)
    if V is None:
        V = np.stack([data.grad(R[:, k]) for k in range(R.shape[1])])  # (K, p)
    Va = V if positive else np.abs(V)
    hard = (l2 == 0) & (l1 > 0)  # L1-only features: the dual must satisfy |v_j| <= l1_j
    s = 1.0
    if hard.any():
        worst = float(np.max(Va[:, hard] / l1[hard]))
        s = 1.0 if worst <= 1.0 else 1.0 / worst
    soft = l2 > 0
    excess = np.maximum(s * Va[:, soft] - l1[soft], 0.0)
    gstar = float(np.sum(excess**2 / (2.0 * l2[soft])))
    Q = s * P + (1.0 - s) * Y
    if binary:
        ent = xlogy(Q, Q) + xlogy(1.0 - Q, 1.0 - Q)
    else:
        ent = xlogy(Q, Q)
    dual = -float(data.sw @ ent.sum(axis=1)) - s * float(b0 @ R.sum(axis=0)) - gstar
    if primal is None:
        primal = loss(eta, Y, data.sw, binary) + penalty(B, l1, l2)
    return primal - dual, V


def penalty_shift(B: np.ndarray, l1: np.ndarray, l2: np.ndarray) -> np.ndarray:
    """Per feature, the c minimising sum_k l1 |B_kj - c| + l2/2 (B_kj - c)^2.

    The derivative ``l2 (K c - sum B) + l1 (#{B < c} - #{B > c})`` is monotone
    in c; between consecutive sorted values it is linear, so the root is found
    exactly from the sorted columns (the mean for ridge, a median for lasso),
    for all features at once (a loop over the K + 1 intervals only).
    """
    K, p = B.shape
    c = np.zeros(p)
    cols = np.flatnonzero(np.any(B != 0, axis=0) & ((l1 > 0) | (l2 > 0)))
    if cols.shape[0] == 0:  # unpenalised: any shift is as good, keep it where it is
        return c
    S = np.sort(B[:, cols], axis=0)
    tot, a, q = S.sum(axis=0), l1[cols], l2[cols]
    lasso = q == 0.0
    best = np.where(lasso, S[(K - 1) // 2], tot / K)
    todo = ~lasso
    qs = np.where(lasso, 1.0, q)
    for m in range(K + 1):  # c in [S[m-1], S[m]]: m values below, K - m above
        cm = (tot - a * (2 * m - K) / qs) / K
        lo = S[m - 1] if m > 0 else np.full(cols.shape[0], -np.inf)
        hi = S[m] if m < K else np.full(cols.shape[0], np.inf)
        hit = todo & (lo <= cm) & (cm <= hi)
        best[hit] = cm[hit]
        todo &= ~hit
        if m < K:  # a kink at S[m] may hold the root
            below, above = m, K - m - 1
            d = q * (K * S[m] - tot)
            kink = todo & (a > 0) & (d + a * (below - above - 1) <= 0.0) & (
                0.0 <= d + a * (below - above + 1))
            best[kink] = S[m][kink]
            todo &= ~kink
    c[cols] = best
    return c


def recentre(data: LogitData, B: np.ndarray, eta: np.ndarray, l1: np.ndarray,
             l2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move each column of B by the shift that minimises the penalty (glmnet).

    The softmax loss does not change when every class's coefficient of a
    feature moves by the same amount, so this only lowers the penalty; it
    settles the direction block coordinate descent over classes cannot see.
    """
    c = penalty_shift(B, l1, l2)
    c[np.abs(c) < 1e-300] = 0.0
    if not np.any(c):
        return B, eta
    nz = np.flatnonzero(c)
    return B - c, eta - data.matvec(nz, c[nz])[:, None]
