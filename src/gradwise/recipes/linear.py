"""Recipe: ``gradwise linear CONFIG``, a regularized linear model and its pictures.

Reads top to bottom: data -> train/test split -> fit (lam given, or chosen by
cross-validation) -> the coefficient path, the CV curve, and lasso vs ridge vs
elastic net side by side -> test metrics -> ``runs/NAME/report.html``.

The objective is glmnet's,
``1/(2n)·||y − Xb − b0||² + lam·(alpha·||b||₁ + (1−alpha)/2·||b||²)``:
``alpha = 1`` is the lasso (L1), ``alpha = 0`` ridge (L2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradwise._io import write_text
from gradwise.config import dump_config
from gradwise.config._linear import MODELS, LinearConfig, LinearModelConfig
from gradwise.recipes._setup import claim_run_dir, cleanup_on_failure
from gradwise.report import Section, write_page

__all__ = ["MODELS", "LinearConfig", "LinearModelConfig", "LinearResult", "fit_estimator", "run"]

@dataclass
class LinearResult:
    run_dir: Path
    results: dict[str, Any]
    estimator: Any


def _alpha(m: LinearModelConfig) -> float:
    return {"lasso": 1.0, "ridge": 0.0}.get(m.kind, m.alpha)


def fit_estimator(m: LinearModelConfig, X: np.ndarray, y: np.ndarray) -> Any:
    """Fit the estimator a config names; CV estimators when ``lam: cv``."""
    from gradwise import linear

    common = dict(standardize=m.standardize, fit_intercept=m.fit_intercept, tol=m.tol)
    alpha = _alpha(m)
    if m.kind == "logistic":
        if m.lam == "cv":
            return linear.LogisticRegressionCV(
                alpha=alpha, n_lams=m.n_lams, eps=m.eps, cv=m.cv, select=m.select, **common
            ).fit(X, y)
        return linear.LogisticRegression(lam=m.lam, alpha=alpha, **common).fit(X, y)
    if m.lam == "cv":
        return linear.ElasticNetCV(
            alpha=alpha, n_lams=m.n_lams, eps=m.eps, cv=m.cv, select=m.select, **common
        ).fit(X, y)
    if m.kind == "ridge":
        return linear.Ridge(lam=m.lam, standardize=m.standardize, fit_intercept=m.fit_intercept).fit(X, y)
    return linear.ElasticNet(lam=m.lam, alpha=alpha, **common).fit(X, y)


def run(cfg: LinearConfig, *, overwrite: bool = True) -> LinearResult:
    """Fit, draw and report one linear model; writes ``runs/NAME/``.

    An existing ``runs/NAME`` is replaced (``overwrite``, the default; the
    command line refuses unless ``--overwrite``). A run that fails leaves no
    new directory behind.
    """
    run_dir = cfg.run_dir
    fresh = claim_run_dir(run_dir, overwrite=overwrite)
    with cleanup_on_failure(run_dir, fresh):
        return _run(cfg, run_dir)


def _run(cfg: LinearConfig, run_dir: Path) -> LinearResult:
    from gradwise import data as gdata
    from gradwise import linear
    from gradwise.linear import plotting
    from gradwise.recipes.train import load_table

    (run_dir / "plots").mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")

    table = load_table(cfg.data)
    parts = gdata.split(table, val=0.0, test=cfg.data.test, seed=cfg.data.seed)
    Xtr, ytr = parts.train.X.astype(np.float64), parts.train.y
    Xte, yte = parts.test.X.astype(np.float64), parts.test.y
    m = cfg.model
    if m.kind == "logistic" and table.task not in ("binary", "multiclass"):
        from gradwise.errors import ConfigError

        raise ConfigError(f"model.kind: 'logistic' needs a classification target; {table.name} is {table.task}")
    est = fit_estimator(m, Xtr, ytr)
    lam = float(getattr(est, "lam_", m.lam))
    coef = np.asarray(est.coef_)

    images: list[Path] = []
    text = [f"{m.kind}: lam = {lam:.4g}, alpha = {_alpha(m)}"]
    if m.kind != "logistic":
        lams, coefs, _ = linear.enet_path(
            Xtr, ytr.astype(np.float64), alpha=max(_alpha(m), 1e-3) if m.kind == "ridge" else _alpha(m),
            n_lams=m.n_lams, eps=m.eps, standardize=m.standardize,
        )
        images.append(plotting.plot_path(lams, coefs, run_dir / "plots" / "path.png", table.feature_names))
    if m.lam == "cv":
        images.append(plotting.plot_cv(est, run_dir / "plots" / "cv.png"))
        text.append(f"lam_min = {est.lam_min_:.4g}, lam_1se = {est.lam_1se_:.4g} (used: {m.select})")
    results: dict[str, Any] = {"lam": lam, "nonzero": int(np.sum(coef != 0)), "features": int(coef.size)}
    if m.kind == "logistic":
        results["test_accuracy"] = float(est.score(Xte, yte))
    else:
        pred = est.predict(Xte)
        results["test_mse"] = float(np.mean((pred - yte) ** 2))
        results["test_r2"] = float(est.score(Xte, yte))
    if table.coef is not None:
        results["support"] = linear.support_recovery(table.coef, coef)

    if cfg.compare and m.kind != "logistic":
        fitted = {
            "lasso (L1)": linear.Lasso(lam=lam, standardize=m.standardize).fit(Xtr, ytr),
            "ridge (L2)": linear.Ridge(lam=lam, standardize=m.standardize).fit(Xtr, ytr),
            "elastic net": linear.ElasticNet(lam=lam, alpha=0.5, standardize=m.standardize).fit(Xtr, ytr),
        }
        images.append(
            plotting.plot_coefficients(fitted, run_dir / "plots" / "coefficients.png", table.feature_names)
        )
        results["compare_nonzero"] = {k: int(np.sum(v.coef_ != 0)) for k, v in fitted.items()}

    write_text(run_dir / "results.json", json.dumps(results, indent=2))
    rows = [{"metric": k, "value": v} for k, v in results.items() if not isinstance(v, dict)]
    write_page(
        run_dir,
        f"gradwise linear: {cfg.name}",
        [
            Section("Model", text="; ".join(text), tables=[("results", rows)]),
            Section(
                "Pictures",
                text=(
                    "The path: coefficients against log lam; read right to left, features "
                    "reach exactly zero one by one (feature selection). Ridge shrinks but "
                    "never zeroes."
                ),
                images=images,
            ),
            Section("Resolved config", pre=(run_dir / "config.yaml").read_text()),
        ],
    )
    return LinearResult(run_dir, results, est)
