"""Penalties with exact proximal operators, parameter masks and sparsity reports.

``L1(lam)``, ``L2(lam)`` and ``ElasticNet(lam, alpha)`` follow glmnet:
``P(w) = lam * (alpha * ||w||_1 + (1 - alpha) / 2 * ||w||_2^2)``. Each has
``.value(params)`` (add it to a loss), ``.prox(tensor, step)`` (exact proximal
operator, in place; pass the penalty as ``prox=`` to any ``gradwise.optim``
alias to get exact zeros) and ``.mask``. ``sparsity(model)`` counts the zeros.
"""

from gradwise.regularization._masks import Mask, check_mask, named_tensors, selects
from gradwise.regularization._penalties import (
    L1,
    L2,
    PENALTY_KINDS,
    ElasticNet,
    Penalty,
    penalty,
)
from gradwise.regularization._sparsity import SparsityReport, sparsity

__all__ = [
    "L1",
    "L2",
    "PENALTY_KINDS",
    "ElasticNet",
    "Mask",
    "Penalty",
    "SparsityReport",
    "check_mask",
    "named_tensors",
    "penalty",
    "selects",
    "sparsity",
]
