"""Plots of regularised linear models: coefficient paths, CV curves, L1 vs L2 side by side.

Every function draws on its own matplotlib ``Figure`` with the Agg canvas
(no global pyplot state, no display needed) and writes a PNG atomically
through :func:`gradwise._io.save_png`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from gradwise._io import new_figure, save_png
from gradwise.errors import DataError


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    return save_png(fig, path, dpi=120, tight=False, bbox_inches="tight")


def _names(p: int, feature_names: Sequence[str] | None) -> list[str]:
    if feature_names is None:
        return [f"x{j}" for j in range(p)]
    names = [str(n) for n in feature_names]
    if len(names) != p:
        raise DataError(f"feature_names has {len(names)} names for {p} features")
    return names


def plot_path(lams: Any, coefs: Any, path: str | os.PathLike,
              feature_names: Sequence[str] | None = None) -> Path:
    """Coefficient paths against log(lam), as glmnet draws them.

    Reading right to left (lam growing), features reach exactly zero one by
    one: the L1 penalty's feature selection. The top axis counts non-zeros.

    Args:
        lams: (L,) penalty strengths. coefs: (p, L) coefficients, e.g. the
            output of `enet_path`. path: PNG file to write.

    Example:
        >>> from gradwise.linear import enet_path
        >>> lams, coefs, _ = enet_path(X, y, alpha=1.0)  # doctest: +SKIP
        >>> plot_path(lams, coefs, "path.png")  # doctest: +SKIP
    """
    lams = np.asarray(lams, dtype=float)
    coefs = np.asarray(coefs, dtype=float)
    if coefs.ndim != 2 or coefs.shape[1] != lams.shape[0]:
        raise DataError(f"coefs must be (p, {lams.shape[0]}) for {lams.shape[0]} lams; "
                        f"got {coefs.shape}")
    names = _names(coefs.shape[0], feature_names)
    fig = new_figure(7, 4.5)
    ax = fig.add_subplot()
    loglam = np.log(lams)
    for j in range(coefs.shape[0]):
        ax.plot(loglam, coefs[j], lw=1.2, label=names[j] if coefs.shape[0] <= 12 else None)
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xlabel("log(lam)")
    ax.set_ylabel("coefficient")
    ax.invert_xaxis()  # glmnet convention: model complexity grows to the right
    nnz = (coefs != 0).sum(axis=0)
    top = ax.secondary_xaxis("top")
    ticks = np.linspace(loglam.min(), loglam.max(), min(6, lams.shape[0]))
    top.set_ticks(ticks)
    top.set_xticklabels([str(int(nnz[np.argmin(np.abs(loglam - t))])) for t in ticks])
    top.set_xlabel("non-zero coefficients")
    if coefs.shape[0] <= 12:
        ax.legend(fontsize=7, loc="best")
    ax.set_title("Coefficient path")
    return _save(fig, path)


def plot_cv(cv_estimator: Any, path: str | os.PathLike) -> Path:
    """Mean CV error +- one standard error against log(lam), with lam_min and lam_1se.

    Args:
        cv_estimator: a fitted `ElasticNetCV` or `LogisticRegressionCV`.
        path: PNG file to write.
    """
    for attr in ("lams_", "cv_mean_", "cv_se_", "lam_min_", "lam_1se_"):
        if not hasattr(cv_estimator, attr):
            raise DataError(f"plot_cv needs a fitted CV estimator; {attr} is missing")
    loglam = np.log(cv_estimator.lams_)
    fig = new_figure(7, 4.5)
    ax = fig.add_subplot()
    ax.errorbar(loglam, cv_estimator.cv_mean_, yerr=cv_estimator.cv_se_, fmt="o", ms=3,
                color="tab:red", ecolor="0.6", capsize=2)
    ax.axvline(np.log(cv_estimator.lam_min_), ls="--", color="k", lw=1,
               label=f"lam_min = {cv_estimator.lam_min_:.3g}")
    ax.axvline(np.log(cv_estimator.lam_1se_), ls=":", color="k", lw=1,
               label=f"lam_1se = {cv_estimator.lam_1se_:.3g}")
    ax.invert_xaxis()
    ax.set_xlabel("log(lam)")
    scoring = getattr(cv_estimator, "scoring", "mean squared error")
    ax.set_ylabel(f"CV {scoring}")
    ax.legend(fontsize=8)
    ax.set_title("Cross-validation curve")
    return _save(fig, path)


def plot_coefficients(models: Mapping[str, Any], path: str | os.PathLike,
                      feature_names: Sequence[str] | None = None) -> Path:
    """Coefficients of several fitted models side by side (e.g. L1 vs L2 vs elastic net).

    Lasso zeros some coefficients exactly, ridge shrinks all of them, the
    elastic net sits between. Exact zeros are marked with an open circle.
    Multinomial models show ``||B_j||_2`` over classes.

    Args:
        models: name -> fitted estimator with ``coef_``. path: PNG file.
    """
    if not models:
        raise DataError("plot_coefficients needs at least one model")
    coefs = {}
    for name, m in models.items():
        c = np.asarray(getattr(m, "coef_", None), dtype=float)
        if c.ndim == 2:
            c = c[0] if c.shape[0] == 1 else np.linalg.norm(c, axis=0)
        coefs[name] = c
    p = {c.shape[0] for c in coefs.values()}
    if len(p) != 1:
        raise DataError(f"models have different numbers of coefficients: {sorted(p)}")
    p = p.pop()
    names = _names(p, feature_names)
    fig = new_figure(max(6, 0.45 * p + 2), 4.5)
    ax = fig.add_subplot()
    width = 0.8 / len(coefs)
    x = np.arange(p)
    for k, (label, c) in enumerate(coefs.items()):
        pos = x - 0.4 + width * (k + 0.5)
        ax.bar(pos, c, width, label=f"{label} ({int((c == 0).sum())} zeros)")
        zeros = c == 0
        ax.plot(pos[zeros], np.zeros(zeros.sum()), "o", mfc="none", mec="k", ms=4)
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60 if p > 8 else 0, ha="right" if p > 8 else "center",
                       fontsize=7)
    ax.set_ylabel("coefficient")
    ax.legend(fontsize=8)
    ax.set_title("Coefficients side by side")
    return _save(fig, path)


__all__ = ["plot_coefficients", "plot_cv", "plot_path"]
