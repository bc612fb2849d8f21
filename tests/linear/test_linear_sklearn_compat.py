"""scikit-learn API compatibility: check_estimator, Pipeline, GridSearchCV, clone.

Every check of ``sklearn.utils.estimator_checks`` runs and passes. The only
one scikit-learn itself may skip is ``check_array_api_input``: it runs only
when the environment variable SCIPY_ARRAY_API=1 is set before numpy and
scipy are imported, and these estimators are numpy-only (they do not declare
``array_api_support``), so nothing is lost. The CV estimators are checked
with 10 lams and 3 folds to keep the ~60 checks fast; the code paths are the
same as with the defaults.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from gradwise.linear import (
    ElasticNet,
    ElasticNetCV,
    Lasso,
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
)

ESTIMATORS = [
    Lasso(),
    ElasticNet(),
    Ridge(),
    LogisticRegression(),
    ElasticNetCV(n_lams=10, cv=3),
    LogisticRegressionCV(n_lams=10, cv=3),
]


@parametrize_with_checks(ESTIMATORS)
def test_check_estimator(estimator, check):
    check(estimator)


def test_pipeline_and_grid_search(diabetes):
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), ElasticNet(standardize=False))
    grid = GridSearchCV(pipe, {"elasticnet__lam": [0.01, 0.1, 1.0],
                               "elasticnet__alpha": [0.2, 1.0]}, cv=3).fit(X, y)
    assert set(grid.best_params_) == {"elasticnet__lam", "elasticnet__alpha"}
    assert grid.best_estimator_.score(X, y) > 0.4
    assert grid.cv_results_["mean_test_score"].shape == (6,)


def test_grid_search_classifier(cancer):
    X, y = cancer
    grid = GridSearchCV(LogisticRegression(), {"lam": [1e-3, 1e-2, 1e-1]}, cv=3).fit(X, y)
    assert grid.best_score_ > 0.95


def test_clone_keeps_parameters_only():
    m = ElasticNet(lam=0.3, alpha=0.2, penalty_factor=[1.0, 2.0])
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "coef_")
    assert np.array_equal(c.penalty_factor, [1.0, 2.0])
