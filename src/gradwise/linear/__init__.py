"""glmnet-grade regularised linear models as scikit-learn estimators.

Lasso (L1), Ridge (L2), ElasticNet (``alpha`` mixes them: 1 = lasso, 0 =
ridge) and penalised LogisticRegression, with regularisation paths and
cross-validation over ``lam``. The objective is glmnet's::

    1/(2n) ||y - X b - b0||^2 + lam * (alpha ||b||_1 + (1 - alpha)/2 ||b||^2)

so ``ElasticNet(lam=a, alpha=r, standardize=False)`` equals scikit-learn's
``ElasticNet(alpha=a, l1_ratio=r)``. Plots live in `gradwise.linear.plotting`.
"""

from ._classification import LogisticRegression
from ._cv import ElasticNetCV, LogisticRegressionCV, one_se_rule
from ._logistic_path import logistic_path
from ._metrics import support_recovery
from ._multitask import MultiTaskElasticNet
from ._path import enet_path
from ._regression import ElasticNet, Lasso, Ridge

__all__ = [
    "ElasticNet",
    "ElasticNetCV",
    "Lasso",
    "LogisticRegression",
    "LogisticRegressionCV",
    "MultiTaskElasticNet",
    "Ridge",
    "enet_path",
    "logistic_path",
    "one_se_rule",
    "support_recovery",
]
