"""Declarative parameter constraints and input checks for the estimators.

Each estimator lists ``_parameter_constraints = {name: [constraint, ...]}``;
`validate_params` runs in ``fit`` (constructors only store arguments, as
scikit-learn requires) and names the parameter, the value and what is
allowed. Data checks reuse scikit-learn's own validation so that NaN/inf,
shape and dtype errors read exactly like scikit-learn's.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

from gradwise.errors import ConfigError, DataError

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None


class InvalidParameterError(ConfigError, TypeError):
    """A constructor argument has a bad type or value (raised by ``fit``)."""


class Interval:
    """Numbers of ``kind`` (``numbers.Real`` or ``numbers.Integral``) in a range."""

    def __init__(self, kind: type, left: float | None, right: float | None, closed: str = "both"):
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def accepts(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, self.kind):
            return False
        if not np.isfinite(v):  # NaN and inf are never valid settings
            return False
        lo_ok = self.left is None or (
            v >= self.left if self.closed in ("both", "left") else v > self.left
        )
        hi_ok = self.right is None or (
            v <= self.right if self.closed in ("both", "right") else v < self.right
        )
        return lo_ok and hi_ok

    def __str__(self) -> str:
        kind = "an int" if self.kind is numbers.Integral else "a float"
        lb = "[" if self.closed in ("both", "left") else "("
        rb = "]" if self.closed in ("both", "right") else ")"
        lo = "-inf" if self.left is None else f"{self.left:g}"
        hi = "inf" if self.right is None else f"{self.right:g}"
        return f"{kind} in {lb}{lo}, {hi}{rb}"


class Options:
    """One of a fixed set of values."""

    def __init__(self, *values: Any):
        self.values = values

    def accepts(self, v: Any) -> bool:
        return isinstance(v, str | bool | int | float | type(None)) and v in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


def _accepts(constraint: Any, v: Any) -> bool:
    if constraint is None:
        return v is None
    if constraint == "boolean":
        return isinstance(v, bool | np.bool_)
    if constraint == "array-like":
        return isinstance(v, np.ndarray | Sequence) and not isinstance(v, str)
    if constraint == "cv":
        return (
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 2
        ) or hasattr(v, "split") or (isinstance(v, Sequence) and not isinstance(v, str))
    return constraint.accepts(v)


def _describe(constraint: Any) -> str:
    return {
        None: "None",
        "boolean": "a bool",
        "array-like": "an array-like",
        "cv": "an int >= 2, a CV splitter or an iterable of (train, test) splits",
    }.get(constraint, str(constraint)) if not hasattr(constraint, "accepts") else str(constraint)


def validate_params(estimator: Any) -> None:
    """Check every parameter against ``estimator._parameter_constraints``."""
    name = type(estimator).__name__
    for param, allowed in estimator._parameter_constraints.items():
        v = getattr(estimator, param)
        if not any(_accepts(c, v) for c in allowed):
            what = " or ".join(_describe(c) for c in allowed)
            raise InvalidParameterError(f"{name}: parameter {param!r} must be {what}; got {v!r}")


def validate_data(estimator: Any, X: Any, y: Any = "no_validation", *, reset: bool,
                  **kw: Any) -> Any:
    """scikit-learn's input validation (NaN/inf, shapes, n_features_in_)."""
    kw.setdefault("accept_sparse", ("csc", "csr"))
    kw.setdefault("dtype", (np.float64, np.float32))
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, X, y, reset=reset, **kw)
    return estimator._validate_data(X, y, reset=reset, **kw)  # pragma: no cover


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """Validated sample weights (n,) float64, or None when not given."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n, float(sample_weight))
    sw = check_array(sample_weight, ensure_2d=False, dtype=np.float64, input_name="sample_weight")
    if sw.ndim != 1 or sw.shape[0] != n:
        raise DataError(f"sample_weight.shape == {sw.shape}, expected ({n},)")
    if np.any(sw < 0):
        raise DataError("sample_weight must be non-negative; got negative weights")
    if not np.any(sw > 0):
        raise DataError("sample weights must contain at least one non-zero weight; all are zero")
    return sw


def check_penalty_factor(penalty_factor: Any, p: int) -> np.ndarray | None:
    """Validated per-feature penalty factors (p,), or None for all ones."""
    if penalty_factor is None:
        return None
    pf = check_array(penalty_factor, ensure_2d=False, dtype=np.float64, input_name="penalty_factor")
    if pf.ndim != 1 or pf.shape[0] != p:
        raise DataError(f"penalty_factor has shape {pf.shape}; expected ({p},), one per feature")
    if np.any(pf < 0):
        raise DataError("penalty_factor must be >= 0 for every feature")
    return pf


def as_float64(X: Any) -> Any:
    """float64 copy only where needed (the kernels are compiled for float64)."""
    if sp.issparse(X):
        return X.astype(np.float64) if X.dtype != np.float64 else X
    return np.asarray(X, dtype=np.float64)
