"""`enet_path`: the elastic-net regularisation path, the numeric core of the estimators."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array, check_consistent_length

from gradwise.errors import ConfigError

from ._enet import PathResult, lam_grid, lam_max, solve_path
from ._problem import LSProblem, make_problem, penalty_weights
from ._ridge import ridge_path
from ._validation import as_float64, check_penalty_factor, check_sample_weight


def check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ConfigError(f"alpha must be a float in [0, 1] (1 = lasso, 0 = ridge); got {alpha!r}")
    return float(alpha)


def check_lams(lams: Any) -> np.ndarray:
    lams = np.atleast_1d(np.asarray(lams, dtype=np.float64))
    if lams.ndim != 1 or lams.shape[0] == 0:
        raise ConfigError(f"lams must be a non-empty 1-D sequence; got shape {lams.shape}")
    if not np.all(np.isfinite(lams)) or np.any(lams < 0):
        raise ConfigError(f"every lam must be a finite float >= 0; got {lams[lams < 0][:3]}...")
    return np.sort(lams)[::-1]


def check_grid(n_lams: Any, eps: Any) -> None:
    """The default lam grid's size and depth: an int >= 1 and a ratio in (0, 1)."""
    if not isinstance(n_lams, numbers.Integral) or n_lams < 1:
        raise ConfigError(f"n_lams must be an int >= 1; got {n_lams!r}")
    if not 0 < eps < 1:
        raise ConfigError(f"eps must be in (0, 1); got {eps!r}")


def prepare(X: np.ndarray | sp.spmatrix, y: np.ndarray, sample_weight: np.ndarray | None,
            fit_intercept: bool, standardize: bool, penalty_factor: Any,
            gram: bool | str = "auto") -> tuple[LSProblem, np.ndarray, np.ndarray]:
    """Validated problem and penalty weights: (LSProblem, w1, w2)."""
    prob = make_problem(X, y, sample_weight, fit_intercept, gram=gram)
    pf = check_penalty_factor(penalty_factor, prob.p)
    w1, w2 = penalty_weights(prob, pf, standardize)
    return prob, w1, w2


def fit_path(
    prob: LSProblem,
    w1: np.ndarray,
    w2: np.ndarray,
    alpha: float,
    lams: np.ndarray | None,
    n_lams: int,
    eps: float,
    **solver: Any,
) -> PathResult:
    """Path on a prepared problem; alpha = 0 uses the one-SVD ridge path."""
    if lams is None:
        lams = lam_grid(lam_max(prob, alpha, w1, solver.get("positive", False)), n_lams, eps)
    if alpha == 0.0 and not solver.get("positive", False):
        coefs = ridge_path(prob, lams, w2)
        gaps = np.array([ridge_gap(prob, coefs[:, k], lam, w2) for k, lam in enumerate(lams)])
        n_it = np.zeros(lams.shape[0], dtype=np.int64)
        return PathResult(lams, coefs, prob.y_mean - prob.x_mean @ coefs, gaps, n_it)
    solver.setdefault("lam_prev", lam_max(prob, alpha, w1, solver.get("positive", False)))
    return solve_path(prob, lams, alpha, w1, w2, **solver)


# glmnet's path stop (fsmax's neighbours in glmnet.control): the deviance ratio
# saturates, or it moves by less than this fraction of itself between two lams
DEV_RATIO_MAX = 0.999
DEV_CHANGE_MIN = 1e-5
_STOP_BLOCK = 5  # lams solved between two checks of the early stop


def dev_ratios(prob: LSProblem, coefs: np.ndarray) -> np.ndarray:
    """Fraction of the (weighted, centred) deviance explained, per column of coefs (p, L)."""
    if prob.zz <= 0:
        return np.ones(coefs.shape[1])
    if prob.kind == "gram":
        rss = prob.zz - 2.0 * (prob.q @ coefs) + np.einsum("jl,jk,kl->l", coefs, prob.G, coefs)
    else:
        R = prob.zc[:, None] - np.column_stack([prob.matvec(coefs[:, k])
                                                for k in range(coefs.shape[1])])
        wR = R if prob.w.shape[0] == 0 else prob.w[:, None] * R
        rss = np.einsum("il,il->l", R, wR)
    return 1.0 - rss / prob.zz


def early_stop_index(ratios: np.ndarray) -> int | None:
    """Index of the last lam glmnet would solve under its path stop, or None to go on."""
    for k, r in enumerate(ratios):
        if r >= DEV_RATIO_MAX:
            return k
        if k > 0 and r - ratios[k - 1] < DEV_CHANGE_MIN * r:
            return k
    return None


def fit_path_early_stop(prob: LSProblem, w1: np.ndarray, w2: np.ndarray, alpha: float,
                        lams: np.ndarray, **solver: Any) -> PathResult:
    """`fit_path` on ``lams`` that stops where glmnet's path stop fires.

    The lams are solved in small blocks (warm-started); after each block the
    deviance ratios are checked and the path ends at the first lam whose
    ratio is >= 0.999 or moved by less than 1e-5 of itself.
    """
    parts: list[PathResult] = []
    coef_init = solver.pop("coef_init", None)
    seen = np.empty(0)
    for start in range(0, lams.shape[0], _STOP_BLOCK):
        block = lams[start:start + _STOP_BLOCK]
        res = fit_path(prob, w1, w2, alpha, block, 0, 0.0, coef_init=coef_init, **solver)
        solver["lam_prev"] = float(block[-1])
        coef_init = res.coefs[:, -1]
        parts.append(res)
        seen = np.concatenate([seen, dev_ratios(prob, res.coefs)])
        stop = early_stop_index(seen)
        if stop is not None:
            break
    out = PathResult(*[np.concatenate([getattr(r, f) for r in parts], axis=-1)
                       for f in ("lams", "coefs", "intercepts", "gaps", "n_iters")])
    end = out.lams.shape[0] if stop is None else stop + 1
    return PathResult(out.lams[:end], out.coefs[:, :end], out.intercepts[:end], out.gaps[:end],
                      out.n_iters[:end])


def ridge_gap(prob: LSProblem, b: np.ndarray, lam: float, w2: np.ndarray) -> float:
    """Duality gap (objective scale) of a ridge solution, scikit-learn's formulation B."""
    from ._enet import _full_gap, _State

    state = _State(prob, b)
    l2 = prob.wsum * lam * w2
    gap = _full_gap(prob, state, np.zeros(prob.p), l2, False, True, prob.H > 0)
    return max(gap, 0.0) / prob.wsum


def enet_path(
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
    max_iter: int = 1000,
    coef_init: Any = None,
    early_stop: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elastic-net coefficients along a decreasing grid of lams.

    Minimises, for each lam, glmnet's objective::

        1/(2n) ||y - X b - b0||^2 + lam * (alpha ||b||_1 + (1 - alpha)/2 ||b||_2^2)

    (weighted by ``sample_weight`` normalised to sum to n). ``alpha = 1`` is
    the lasso, ``alpha = 0`` ridge. scikit-learn calls lam ``alpha`` and alpha
    ``l1_ratio``: ``enet_path(X, y, alpha=r, lams=a, fit_intercept=False,
    standardize=False)`` equals ``sklearn.linear_model.enet_path(X, y,
    l1_ratio=r, alphas=a)``.

    Args:
        X: (n, p) dense array or scipy.sparse matrix.
        y: (n,) response.
        alpha: L1/L2 mix in [0, 1].
        lams: lams to solve at (sorted decreasing); default a geometric grid of
            ``n_lams`` from lam_max (all coefficients zero) to ``eps * lam_max``.
        standardize: penalise the coefficients of unit-variance columns and
            report them on the original scale (glmnet's default).
        penalty_factor: (p,) per-feature multiplier of the penalty (0 leaves a
            feature unpenalised; not rescaled, unlike glmnet's).
        tol: stop each lam when the duality gap <= ``tol * ||y - ybar||^2 / n``
            (scikit-learn's criterion on the same scale).
        early_stop: end the path as glmnet does, at the first lam whose
            fraction of deviance explained is >= 0.999 or grew by less than
            1e-5 of itself; off by default, so every requested lam is solved.

    Returns:
        ``(lams, coefs, gaps)``: lams (L,), coefs (p, L) on the original scale,
        duality gaps (L,) on the objective's scale (scikit-learn's gaps are n
        times larger). The intercepts are ``ybar - xbar @ coefs``.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(50, 5)); y = X[:, 0] * 2.0
        >>> lams, coefs, gaps = enet_path(X, y, alpha=1.0, n_lams=10)
        >>> coefs.shape, bool((coefs[1:, -1] == 0).all())  # only x0 is ever selected
        ((5, 10), True)
    """
    alpha = check_alpha(alpha)
    X = check_array(X, accept_sparse=("csc", "csr"), dtype=(np.float64, np.float32))
    y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
    if y.ndim != 1:
        raise ConfigError(f"y must be 1-D (n_samples,); got shape {y.shape}")
    check_consistent_length(X, y)
    sw = check_sample_weight(sample_weight, X.shape[0])
    lam_arr = None if lams is None else check_lams(lams)
    check_grid(n_lams, eps)
    X = as_float64(X)
    if sp.issparse(X):
        X = X.tocsc()
    prob, w1, w2 = prepare(X, y, sw, fit_intercept, standardize, penalty_factor)
    b0 = None if coef_init is None else np.asarray(coef_init, dtype=np.float64).ravel()
    if early_stop:
        if lam_arr is None:
            lam_arr = lam_grid(lam_max(prob, alpha, w1, positive), n_lams, eps)
        res = fit_path_early_stop(prob, w1, w2, alpha, lam_arr, positive=positive, tol=tol,
                                  max_iter=max_iter, coef_init=b0)
    else:
        res = fit_path(prob, w1, w2, alpha, lam_arr, n_lams, eps, positive=positive, tol=tol,
                       max_iter=max_iter, coef_init=b0)
    return res.lams, res.coefs, res.gaps
