import json

import numpy as np
import pytest
from sklearn.linear_model import Lasso as SkLasso

from gradwise.config import parse_config
from gradwise.errors import ConfigError
from gradwise.recipes.linear import LinearConfig, run


def _cfg(tmp_path, **model):
    return parse_config(
        {
            "name": "lin",
            "runs_dir": str(tmp_path),
            "data": {
                "name": "sparse_regression",
                "options": {"n": 200, "p": 30, "k": 4, "noise": 0.3, "seed": 1},
                "val": 0.0,
                "test": 0.2,
                "standardize": False,
            },
            "model": model,
        },
        LinearConfig,
    )


def test_lasso_cv_recovers_the_support_and_writes_the_run(tmp_path):
    result = run(_cfg(tmp_path, kind="lasso", lam="cv"))
    assert result.results["support"] == {"precision": 1.0, "recall": 1.0}
    run_dir = tmp_path / "lin"
    assert json.loads((run_dir / "results.json").read_text())["nonzero"] == 4
    for png in ("path.png", "cv.png", "coefficients.png"):
        assert (run_dir / "plots" / png).exists()
    assert "feature selection" in (run_dir / "report.html").read_text()
    assert result.results["compare_nonzero"]["ridge (L2)"] == 30  # ridge keeps every feature


def test_fixed_lam_equals_scikit_learn(tmp_path):
    result = run(_cfg(tmp_path, kind="lasso", lam=0.05, standardize=False, tol=1e-10))
    from gradwise.data import load, split

    table = load("sparse_regression", n=200, p=30, k=4, noise=0.3, seed=1)
    train = split(table, val=0.0, test=0.2, seed=0).train
    ref = SkLasso(alpha=0.05, tol=1e-12, max_iter=100_000).fit(train.X.astype(np.float64), train.y)
    np.testing.assert_allclose(result.estimator.coef_, ref.coef_, rtol=1e-5, atol=1e-7)


def test_logistic_needs_a_classification_target(tmp_path):
    with pytest.raises(ConfigError, match="classification"):
        run(_cfg(tmp_path, kind="logistic", lam=0.1))


def test_bad_alpha_is_a_config_error():
    with pytest.raises(ConfigError, match="model.alpha"):
        parse_config({"model": {"alpha": 1.5}}, LinearConfig)
