"""One proximal Newton step of the logistic solver, and the decrements its stopping rule adds.

`class_step` builds class k's IRLS quadratic model on the working set and
solves it by coordinate descent (`_logistic_cd.cd_newton`, glmnet's rule; or
`_cd.cd_residual` to the model's duality gap when that rule stalled);
`line_search` backtracks on the true objective along the step. The
decrements are what the duality gap cannot see: the unpenalised features'
and the intercepts' own Newton decrements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _kernels
from ._logistic_objective import loss, penalty, probs

if TYPE_CHECKING:
    from ._logistic import LogitData

_NO_INT = np.empty(0, dtype=np.int64)
_NO_FLOAT = np.empty(0)
_NO_GU = np.zeros((0, 0))
_ZT_CHEAP = 1e3  # largest working residual for which d eta is read off the CD residual
_PMIN = 1e-10  # curvature floor p(1-p) for saturated probabilities (glmnet uses 1e-5)


def lkernels() -> Any:
    """The logistic kernels (`_logistic_cd`) of the backend in use."""
    return _kernels.load("_logistic_cd", _kernels.backend())


def class_step(data: LogitData, k: int, eta: np.ndarray, P: np.ndarray, Y: np.ndarray,
                B: np.ndarray, b0: np.ndarray, ws: np.ndarray, l1: np.ndarray, l2: np.ndarray,
                positive: bool, fit_intercept: bool, thr: float, max_epochs: int,
                precise: tuple[float, float] | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """Penalised IRLS step for class k on the working set: (dB_k, db0_k, d eta_k).

    Coordinate descent stops on glmnet's rule (no coordinate moves the model
    by more than ``thr``). With ``precise = (tol_in, tol_floor)`` it runs to the
    model's own duality gap instead (`_cd.cd_residual`: a fraction of its
    starting gap, at most tol_in): the rule for when the cheap one stalled,
    since a per-coordinate rule can miss slow, correlated coordinates. The
    quadratic model's residual gives the change of the linear scores without
    another pass over X (recomputed from the columns when ``precise`` or the
    probabilities saturate).
    """
    pk = P[:, k]
    curv = np.maximum(pk * (1.0 - pk), _PMIN)
    v = data.sw * curv
    zt = (Y[:, k] - pk) / curv  # working residual; eta + zt is IRLS's working response
    vsum = float(v.sum())
    m = np.zeros(data.p)
    H = np.zeros(data.p)
    s1, s2, gz = data.col_stats(ws, v, v * zt)
    if fit_intercept:
        m[ws] = s1 / vsum
        H[ws] = s2 - vsum * m[ws] ** 2
        r = zt - (v @ zt) / vsum
    else:
        H[ws] = s2
        r = zt.copy()
    zeta = eta[:, k] + zt
    zc = zeta - (v @ zeta) / vsum if fit_intercept else zeta
    b = B[k].copy()
    X, n, d, ind, ptr, sparse = data.arrays
    D = _kernels.Data(X, n, d, ind, ptr, sparse, v, vsum, zc, H, m, _NO_FLOAT, _NO_GU, _NO_INT,
                      _NO_INT)
    st = np.zeros(1)
    if precise is None:
        lkernels().cd_newton(D, r, st, b, ws, l1, l2, positive, thr, max_epochs)
    else:
        _precise_cd(D, r, st, b, ws, l1, l2, positive, max_epochs, *precise,
                    gz - (s1 * ((v @ zt) / vsum) if fit_intercept else 0.0))
    new_b0 = (v @ zeta) / vsum - m @ b if fit_intercept else 0.0
    dB, db0 = b - B[k], new_b0 - b0[k]
    if precise is None and np.max(np.abs(zt)) <= _ZT_CHEAP:
        # residual r + s = zeta - (new scores): eta changes by zt - (r + s)
        return dB, db0, zt - r - st[0]
    # saturated probabilities: zt is large and that difference would cancel digits
    return dB, db0, data.matvec(ws, dB[ws]) + db0


def _precise_cd(D: Any, r: np.ndarray, st: np.ndarray, b: np.ndarray, ws: np.ndarray,
                l1: np.ndarray, l2: np.ndarray, positive: bool, max_epochs: int, tol_in: float,
                tol_floor: float, g_ws: np.ndarray) -> None:
    """Inexact Newton: solve the quadratic model to a fraction of its own starting gap."""
    K = _kernels.kernels()
    form_b = bool(np.all(l1 == 0))
    gap0 = K.gap_given_g(D, r, 0.0, b, ws, l1, l2, positive, form_b, g_ws)
    tol_k = max(min(0.1 * gap0, tol_in), 1e-3 * tol_floor)
    if np.any((l1[ws] == 0) & (l2[ws] == 0)):
        # this gap cannot see an unfitted free feature (its dual constraint is
        # X_j^T theta = 0): a fixed number of epochs instead, the outer gap decides
        tol_k, max_epochs = -1.0, min(max_epochs, 50)
    K.cd_residual(D, r, st, b, ws, l1, l2, positive, form_b, max_epochs, tol_k, g_ws, True)


def line_search(data: LogitData, eta: np.ndarray, Y: np.ndarray, B: np.ndarray, b0: np.ndarray,
                 k: int, dB: np.ndarray, db0: float, deta: np.ndarray, l1: np.ndarray,
                 l2: np.ndarray, binary: bool, known: tuple[float, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Backtracking (Armijo) on the true objective along class k's Newton direction.

    ``known``: the objective and the probabilities at ``eta``, when computed already.
    Returns the new (B, b0, eta) and the objective there.
    """
    sw = data.sw
    if known is None:
        f0, P = loss(eta, Y, sw, binary) + penalty(B, l1, l2), probs(eta, binary)
    else:
        f0, P = known
    if not np.any(dB) and db0 == 0.0:
        return B, b0, eta, f0
    slope = float(sw @ ((P[:, k] - Y[:, k]) * deta))  # directional derivative of the loss
    bk_new = B[k] + dB
    pen_change = (float(l1 @ (np.abs(bk_new) - np.abs(B[k])))
                  + 0.5 * float(l2 @ (bk_new**2 - B[k] ** 2)))
    decrease = slope + pen_change
    t = 1.0
    for _ in range(40):
        B_t = B.copy()
        B_t[k] = B[k] + t * dB
        b0_t = b0.copy()
        b0_t[k] += t * db0
        eta_t = eta.copy()
        eta_t[:, k] += t * deta
        f_t = loss(eta_t, Y, sw, binary) + penalty(B_t, l1, l2)
        if f_t <= f0 + 1e-4 * t * decrease or t * np.max(np.abs(deta)) < 1e-14:
            return B_t, b0_t, eta_t, f_t
        t *= 0.5
    return B, b0, eta, f0


def free_decrement(data: LogitData, P: np.ndarray, V: np.ndarray, free: np.ndarray,
                   binary: bool) -> float:
    """Newton decrement ``sum_kj v_kj^2 / (2 h_kj)`` of the unpenalised features.

    A feature with no penalty has the dual constraint ``X_j^T theta = 0``,
    which the scaled dual point of `duality_gap` meets only once that feature
    is fitted. Its share of the remaining decrease of the objective, to
    second order, is ``v^2 / (2 h)`` with ``v`` its gradient and ``h`` its
    curvature ``sum_i sw_i p_i (1 - p_i) x_ij^2``: it is added to the gap, so
    that a solution with an unfitted free feature never passes the stopping
    rule (glmnet fits them to gradient 0).
    """
    if free.shape[0] == 0:
        return 0.0
    total = 0.0
    for k in range(V.shape[0]):
        pk = P[:, k]
        v = data.sw * np.maximum(pk * (1.0 - pk), _PMIN)
        _, h, _ = data.col_stats(free, v)
        total += float(np.sum(V[k, free] ** 2 / (2.0 * np.maximum(h, 1e-300))))
    return total


def intercept_decrement(data: LogitData, P: np.ndarray, Y: np.ndarray) -> float:
    """Newton decrement of the intercepts, ``sum_k (sum_i sw_i (y_ik - p_ik))^2 / (2 h_k)``.

    ``h_k = sum_i sw_i p_ik (1 - p_ik)``: what moving the intercepts alone
    would still gain, to second order. The duality gap holds the intercepts
    fixed, so a start whose intercepts are off (a new lam's warm start) must
    not pass on that gap alone.
    """
    g = data.sw @ (Y - P)
    h = data.sw @ np.maximum(P * (1.0 - P), _PMIN)
    return float(np.sum(g * g / (2.0 * h)))
