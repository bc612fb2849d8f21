"""ElasticNetCV and LogisticRegressionCV: K-fold cross-validation along the lam path."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import log_softmax
from sklearn.base import RegressorMixin
from sklearn.model_selection import check_cv

from ._base import COMMON_CONSTRAINTS, GlmnetBase, LinearPredictMixin
from ._classification import (
    LogisticRegression,
    encode_targets,
    logit_weights,
    to_original_intercept,
)
from ._enet import lam_grid, lam_max, solve_path
from ._logistic import (
    LogitData,
    LogitResult,
    fit_logistic,
    logistic_lam_max,
    logistic_path,
    make_logit_data,
)
from ._path import fit_path, prepare
from ._problem import gram_fold_problems, make_problem, penalty_weights, take_rows, uses_gram
from ._validation import Interval, Options, check_penalty_factor


def one_se_rule(lams: np.ndarray, cv_mean: np.ndarray, cv_se: np.ndarray) -> tuple[int, int]:
    """(index of lam_min, index of lam_1se) on a decreasing lam grid.

    lam_min minimises the mean CV error; lam_1se is the largest lam whose mean
    error is within one standard error of that minimum (Hastie, Tibshirani
    and Friedman, The Elements of Statistical Learning, sec. 7.10).
    """
    i_min = int(np.argmin(cv_mean))
    within = np.flatnonzero(cv_mean <= cv_mean[i_min] + cv_se[i_min])
    return i_min, int(within.min())


def _rows(X: np.ndarray | sp.spmatrix, idx: np.ndarray) -> np.ndarray | sp.spmatrix:
    if sp.issparse(X):
        return sp.csc_matrix(X.tocsr()[idx])
    return X[idx]


def _wmean(v: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Weighted mean over axis 0 of v (n, L)."""
    return v.mean(axis=0) if w is None else (w @ v) / w.sum()


def _summarise(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, std and standard error over folds of errors (n_folds, L)."""
    k = errors.shape[0]
    mean = errors.mean(axis=0)
    std = errors.std(axis=0, ddof=1) if k > 1 else np.zeros_like(mean)
    return mean, std, std / np.sqrt(k)


_CV_CONSTRAINTS = {
    "n_lams": [Interval(Integral, 1, None, closed="left")],
    "eps": [Interval(Real, 0, 1, closed="neither")],
    "lams": ["array-like", None],
    "cv": ["cv"],
    "select": [Options("min", "1se")],
    **COMMON_CONSTRAINTS,
}


def _check_alphas(est: Any) -> list[float]:
    from ._path import check_alpha

    a = est.alpha
    return [check_alpha(v) for v in (a if isinstance(a, list | tuple | np.ndarray) else [a])]


class _CVResultMixin:
    """Stores the CV curves of the chosen alpha and picks lam_min / lam_1se."""

    def _store_cv(self, alphas: list[float], lam_grids: list[np.ndarray],
                  errs_per_alpha: list[np.ndarray]) -> tuple[int, int]:
        means = [_summarise(e) for e in errs_per_alpha]
        best = int(np.argmin([m[0].min() for m in means]))
        mean, std, se = means[best]
        lams = lam_grids[best]
        i_min, i_1se = one_se_rule(lams, mean, se)
        self.alpha_ = alphas[best]
        self.lams_ = lams
        self.cv_mean_, self.cv_std_, self.cv_se_ = mean, std, se
        self.cv_errors_ = errs_per_alpha[best]
        self.lam_min_, self.lam_1se_ = float(lams[i_min]), float(lams[i_1se])
        idx = i_min if self.select == "min" else i_1se
        self.lam_ = float(lams[idx])
        if len(alphas) > 1:
            self.cv_mean_per_alpha_ = np.stack([m[0] for m in means])
        return best, idx


class ElasticNetCV(LinearPredictMixin, RegressorMixin, _CVResultMixin, GlmnetBase):
    """Elastic net with lam (and optionally alpha) chosen by K-fold cross-validation.

    For each alpha, fits the whole lam path on every training fold (the lam
    grid is computed once on all data, as glmnet's ``cv.glmnet``), scores the
    mean squared error on the held-out fold, then refits on all data along
    the same path. ``lam_min_`` minimises the mean CV error, ``lam_1se_`` is
    the largest lam within one standard error of it; ``select`` chooses which
    one the fitted ``coef_`` uses. ``alpha = 0`` (ridge) reuses one SVD per
    fold for every lam. scikit-learn's ``ElasticNetCV(l1_ratio=r)`` is
    ``ElasticNetCV(alpha=r, standardize=False)`` with the same folds.

    Args:
        alpha: L1/L2 mix, or a list of mixes to search.
        n_lams, eps: grid of n_lams lams from lam_max to eps * lam_max.
        lams: explicit grid (overrides n_lams/eps).
        cv: number of folds (KFold), a splitter, or an iterable of splits.
        select: "min" (scikit-learn's choice) or "1se" (glmnet's default
            prediction, the sparser model).
        others: as in `ElasticNet`.

    Attributes:
        lams_, cv_mean_, cv_std_, cv_se_: (L,): the grid, the CV error's mean,
            its std over folds and its standard error (std / sqrt(folds)).
        cv_errors_: (folds, L). lam_min_, lam_1se_, lam_, alpha_: the choices.
        coef_path_, intercept_path_: (p, i + 1) and (i + 1,): the all-data path
            from lam_max down to lam_ = lams_[i]; coef_, intercept_, n_iter_
            (epochs of that path).

    Example:
        >>> from sklearn.datasets import load_diabetes
        >>> X, y = load_diabetes(return_X_y=True)
        >>> cv = ElasticNetCV(alpha=1.0, n_lams=30).fit(X, y)
        >>> bool(cv.lam_1se_ >= cv.lam_min_)
        True
    """

    _parameter_constraints = {"alpha": [Interval(Real, 0, 1), "array-like"], **_CV_CONSTRAINTS}

    def __init__(
        self,
        alpha: float | list[float] = 0.5,
        *,
        n_lams: int = 100,
        eps: float = 1e-3,
        lams: Any = None,
        cv: Any = 5,
        select: str = "min",
        fit_intercept: bool = True,
        standardize: bool = True,
        penalty_factor: Any = None,
        positive: bool = False,
        tol: float = 1e-4,
        max_iter: int = 1000,
    ):
        self.alpha = alpha
        self.n_lams = n_lams
        self.eps = eps
        self.lams = lams
        self.cv = cv
        self.select = select
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.penalty_factor = penalty_factor
        self.positive = positive
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> ElasticNetCV:
        """Cross-validate the path on X (n, p) and y (n,), then refit; returns self."""
        X, y, sw = self._prepare_fit(X, y, sample_weight, y_numeric=True)
        alphas = _check_alphas(self)
        opts = {"positive": self.positive, "tol": self.tol, "max_iter": self.max_iter}
        prep = (self.fit_intercept, self.standardize, self.penalty_factor)
        folds = list(check_cv(self.cv).split(X, y))
        fold_probs = None
        if uses_gram(X, min(len(tr) for tr, _ in folds)):
            # covariance mode: every fold's Gram matrix from the all-data one
            full, fold_probs, Xc, mu = gram_fold_problems(X, y, sw, self.fit_intercept, folds)
        else:
            full = make_problem(X, y, sw, self.fit_intercept)
        pf = check_penalty_factor(self.penalty_factor, full.p)
        w1, w2 = penalty_weights(full, pf, self.standardize)
        if self.lams is not None:
            from ._path import check_lams

            fixed = check_lams(self.lams)
            grids = [fixed for _ in alphas]
        else:
            grids = [lam_grid(lam_max(full, a, w1, self.positive), self.n_lams, self.eps)
                     for a in alphas]
        errs = []
        for a, lams in zip(alphas, grids):
            e = np.empty((len(folds), lams.shape[0]))
            for f, (tr, te) in enumerate(folds):
                if fold_probs is not None:
                    prob = fold_probs[f]
                    f1, f2 = penalty_weights(prob, pf, self.standardize)
                    res = fit_path(prob, f1, f2, a, lams, 0, 0.0, warn=False, **opts)
                    pred = take_rows(Xc, te) @ res.coefs + (mu @ res.coefs + res.intercepts)
                else:
                    prob, f1, f2 = prepare(_rows(X, tr), y[tr], None if sw is None else sw[tr],
                                           *prep)
                    res = fit_path(prob, f1, f2, a, lams, 0, 0.0, warn=False, **opts)
                    pred = _rows(X, te) @ res.coefs + res.intercepts
                e[f] = _wmean((y[te, None] - pred) ** 2, None if sw is None else sw[te])
            errs.append(e)
        best, idx = self._store_cv(alphas, grids, errs)
        # all-data path from lam_max down to the chosen lam (warm starts for the final fit)
        res = fit_path(full, w1, w2, self.alpha_, self.lams_[: idx + 1], 0, 0.0, **opts)
        self.coef_path_, self.intercept_path_ = res.coefs, res.intercepts
        self.n_iter_ = max(1, int(res.n_iters.sum()))
        if self.alpha_ == 0.0 and not self.positive:
            coef = res.coefs[:, idx]
        else:  # exact solution at the chosen lam: polish the path's last solution
            one = solve_path(full, self.lams_[idx:idx + 1], self.alpha_, w1, w2, do_polish=True,
                             coef_init=res.coefs[:, idx], lam_prev=float(self.lams_[idx]),
                             **opts)
            coef = one.coefs[:, 0]
        self.coef_ = coef
        self.intercept_ = float(full.y_mean - full.x_mean @ coef)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the model at ``lam_``, shape (n,)."""
        return self._linear(X)


class LogisticRegressionCV(LogisticRegression, _CVResultMixin):
    """Penalised logistic regression with lam chosen by stratified K-fold CV.

    Fits the lam path on every training fold and scores the held-out fold by
    ``scoring``: "deviance" (``-2 mean log p(y | x)``, glmnet's default) or
    "misclassification" (error rate). lam grid, lam_min_ / lam_1se_ and the
    attributes are as in `ElasticNetCV`; the objective and ``C = 1/(n lam)``
    mapping to scikit-learn as in `LogisticRegression`.

    Example:
        >>> from sklearn.datasets import load_breast_cancer
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> clf = LogisticRegressionCV(alpha=1.0, n_lams=20, cv=3).fit(X, y)
        >>> bool(clf.score(X, y) > 0.95)
        True
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, 1), "array-like"],
        "scoring": [Options("deviance", "misclassification")],
        **_CV_CONSTRAINTS,
    }

    def __init__(
        self,
        alpha: float | list[float] = 1.0,
        *,
        n_lams: int = 100,
        eps: float = 1e-3,
        lams: Any = None,
        cv: Any = 5,
        select: str = "min",
        scoring: str = "deviance",
        fit_intercept: bool = True,
        standardize: bool = True,
        penalty_factor: Any = None,
        positive: bool = False,
        tol: float = 1e-4,
        max_iter: int = 100,
    ):
        self.alpha = alpha
        self.n_lams = n_lams
        self.eps = eps
        self.lams = lams
        self.cv = cv
        self.select = select
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.penalty_factor = penalty_factor
        self.positive = positive
        self.tol = tol
        self.max_iter = max_iter

    def _score_fold(self, Xte: np.ndarray | sp.spmatrix, Yte: np.ndarray, results: list[LogitResult],
                    data: LogitData) -> np.ndarray:
        """(n_test, L) per-sample loss for each lam."""
        etas = np.stack([
            np.asarray(Xte @ r.coef.T) + to_original_intercept(data, r.coef, r.intercept)
            for r in results
        ])  # (L, n, K)
        if Yte.shape[1] == 1:
            etas = np.concatenate([np.zeros_like(etas), etas], axis=2)
            Y2 = np.column_stack([1.0 - Yte[:, 0], Yte[:, 0]])
        else:
            Y2 = Yte
        logp = log_softmax(etas, axis=2)
        if self.scoring == "misclassification":
            return (np.argmax(logp, axis=2) != np.argmax(Y2, axis=1)[None]).T.astype(float)
        return -2.0 * np.einsum("lnk,nk->nl", logp, Y2)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegressionCV:
        """Cross-validate the path on X (n, p) and labels y (n,), then refit; returns self."""
        X, y, sw = self._prepare_fit(X, y, sample_weight)
        classes, Y = encode_targets(y)
        alphas = _check_alphas(self)
        opts = {"fit_intercept": self.fit_intercept, "positive": self.positive,
                "tol": self.tol, "max_iter": self.max_iter}
        full = make_logit_data(X, sw, self.fit_intercept)
        w1, w2 = logit_weights(full, self.penalty_factor, self.standardize)
        if self.lams is not None:
            from ._path import check_lams

            grids = [check_lams(self.lams) for _ in alphas]
        else:
            grids = [lam_grid(logistic_lam_max(full, Y, a, w1, self.positive,
                                               self.fit_intercept), self.n_lams, self.eps)
                     for a in alphas]
        folds = list(check_cv(self.cv, y, classifier=True).split(X, y))
        errs = []
        for a, lams in zip(alphas, grids):
            e = np.empty((len(folds), lams.shape[0]))
            for f, (tr, te) in enumerate(folds):
                swtr = None if sw is None else sw[tr]
                data = make_logit_data(_rows(X, tr), swtr, self.fit_intercept)
                f1, f2 = logit_weights(data, self.penalty_factor, self.standardize)
                path = logistic_path(data, Y[tr], lams, a, f1, f2, warn=False, **opts)
                loss = self._score_fold(_rows(X, te), Y[te], path, data)
                e[f] = _wmean(loss, None if sw is None else sw[te])
            errs.append(e)
        best, idx = self._store_cv(alphas, grids, errs)
        path = logistic_path(full, Y, self.lams_[:idx], self.alpha_, w1, w2, **opts)
        init = (path[-1].coef, path[-1].intercept) if path else (None, None)
        final = fit_logistic(full, Y, self.lam_, self.alpha_, w1, w2, coef_init=init[0],
                             intercept_init=init[1], polish=True, **opts)
        path.append(final)
        self.coef_path_ = np.stack([r.coef for r in path], axis=-1)  # (K, p, idx + 1)
        self.classes_ = classes
        self.coef_ = final.coef
        self.intercept_ = to_original_intercept(full, final.coef, final.intercept)
        self.dual_gap_ = final.gap
        self.n_iter_ = max(1, int(sum(r.n_iter for r in path)))
        return self


