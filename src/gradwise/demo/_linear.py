"""Demo section "linear": regularization for regression, lasso vs ridge vs elastic net."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradwise._io import write_text
from gradwise.demo._registry import register


@register("linear", "Regularization for regression: lasso, ridge, elastic net", order=40)
def regularization_for_regression(
    out_dir: Path, quick: bool = False, seed: int = 0
) -> dict[str, Any]:
    """On ``sparse_regression`` with a known support, lasso and elastic net find
    the true features (precision and recall) while ridge keeps every feature;
    on ``diabetes``, the coefficient path."""
    from gradwise import data, linear
    from gradwise.linear import plotting
    from gradwise.report import Section, render_html

    out_dir.mkdir(parents=True, exist_ok=True)
    table = data.sparse_regression(n=200, p=50, k=5, noise=0.5, seed=seed)
    X, y = table.X.astype(np.float64), table.y.astype(np.float64)
    n_lams = 30 if quick else 100
    summary: dict[str, Any] = {}
    fitted = {}
    for name, alpha in (("lasso", 1.0), ("elastic_net", 0.5), ("ridge", 0.0)):
        cv = linear.ElasticNetCV(alpha=alpha, n_lams=n_lams, cv=5, select="1se").fit(X, y)
        fitted[name] = cv
        rec = linear.support_recovery(table.coef, cv.coef_)
        nz = int(np.sum(cv.coef_ != 0))
        summary[f"{name}_nonzero"] = f"{nz}/{X.shape[1]}"
        summary[f"{name}_precision"] = float(rec["precision"])
        summary[f"{name}_recall"] = float(rec["recall"])
    images: list[Any] = [
        plotting.plot_coefficients(fitted, out_dir / "coefficients.png"),
        plotting.plot_cv(fitted["lasso"], out_dir / "lasso_cv.png"),
    ]
    diabetes = data.load("diabetes")
    lams, coefs, _ = linear.enet_path(diabetes.X.astype(np.float64), diabetes.y.astype(np.float64), alpha=1.0, n_lams=n_lams)
    images.append(plotting.plot_path(lams, coefs, out_dir / "diabetes_path.png", diabetes.feature_names))
    rows = [{"quantity": k, "value": v} for k, v in summary.items()]
    page = render_html(
        "gradwise demo: regularization for regression",
        [
            Section(
                "Support recovery on sparse_regression (5 true features of 50)",
                text="lam chosen by 5-fold CV with the one-standard-error rule.",
                tables=[("", rows)],
                images=images[:2],
            ),
            Section("Lasso path on diabetes", images=images[2:]),
        ],
    )
    write_text(out_dir / "report.html", page)
    summary["report"] = str(out_dir / "report.html")
    return summary
