"""Train/validation/test splits and feature standardization fitted on train only."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import torch

from gradwise.data._table import Table
from gradwise.errors import ConfigError, DataError


class Split(NamedTuple):
    """Three disjoint parts of a :class:`Table`; unpack as ``train, val, test = s``."""

    train: Table
    val: Table
    test: Table


def _fraction(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"split: {field} must be a number in [0, 1), got {value!r}")
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"split: {field} must be in [0, 1), got {value!r}")
    return float(value)


def _cut(
    idx: np.ndarray,
    frac: float,
    labels: np.ndarray | None,
    rng: np.random.RandomState,
    names: list[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (rest, part) with ``ceil(frac·len)`` rows in ``part``."""
    if frac == 0.0:
        return idx, idx[:0]
    from sklearn.model_selection import train_test_split

    try:
        rest, part = train_test_split(
            idx, test_size=frac, random_state=rng, stratify=None if labels is None else labels
        )
    except ValueError as e:
        if labels is None:
            raise DataError(f"split: cannot split {len(idx)} rows ({e})") from None
        values, counts = np.unique(labels, return_counts=True)
        if counts.min() < 2:
            rare = values[counts.argmin()].item()
            rare = names[rare] if names is not None and 0 <= rare < len(names) else rare
            raise DataError(
                f"split: class {rare!r} has only {counts.min()} row; the split keeps each "
                "class's share in train, validation and test, so every class needs at least "
                "2 rows: add rows of that class, or remove its rows from the data"
            ) from None
        raise DataError(
            f"split: {len(idx)} rows are too few to give this part a row of each of the "
            f"{len(values)} classes ({e}); use more rows or a larger val / test fraction"
        ) from None
    return rest, part


def split(
    table: Table,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    stratify: bool = True,
) -> Split:
    """Split ``table`` into train, validation and test parts.

    ``ceil(test·n)`` rows go to test, then ``ceil(val/(1−test)·m)`` of the remaining
    ``m`` rows to validation; the rest is train. For ``binary`` and ``multiclass``
    tables with ``stratify=True`` every part keeps the class proportions (up to
    rounding); ``multilabel`` and ``regression`` tables are split at random. The
    same ``seed`` gives the same split. Each part keeps the original row order.

    Args:
        table: the data.
        val: fraction of rows for validation, in ``[0, 1)``.
        test: fraction of rows for test, in ``[0, 1)``; ``val + test < 1``.
        seed: random seed.
        stratify: keep class proportions (classifiers only).

    Example:
        >>> from gradwise.data import iris
        >>> train, val, test = split(iris(), val=0.2, test=0.2)
        >>> len(train), len(val), len(test)
        (90, 30, 30)
    """
    val = _fraction("val", val)
    test = _fraction("test", test)
    if val + test >= 1.0:
        raise ConfigError(
            f"split: val + test must be < 1 so that train keeps rows, got {val} + {test}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"split: seed must be an int >= 0, got {seed!r}")
    strat = stratify and table.task in ("binary", "multiclass")
    rng = np.random.RandomState(seed)
    idx = np.arange(len(table))
    names = table.classes
    rest, test_idx = _cut(idx, test, table.y if strat else None, rng, names)
    train_idx, val_idx = _cut(
        rest, val / (1.0 - test), table.y[rest] if strat else None, rng, names
    )
    if len(train_idx) == 0:
        raise DataError(f"split: no rows left for train out of {len(table)}; lower val or test")
    return Split(*(table.subset(np.sort(i)) for i in (train_idx, val_idx, test_idx)))


class Standardizer:
    """Scale each feature to zero mean and unit variance: ``z = (x − mean_) / scale_``.

    Fit it on the training features only: statistics of validation or test rows
    must not leak into training. ``scale_`` is the population standard deviation
    (``ddof=0``, as in scikit-learn's ``StandardScaler``); a constant column gets
    ``scale_ = 1`` so that it maps to 0 instead of dividing by zero.

    ``transform`` accepts NumPy arrays and torch tensors and returns the same kind
    and floating dtype (on the tensor's device).

    Example:
        >>> s = Standardizer().fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
        >>> s.mean_.tolist(), s.scale_.tolist()
        ([2.0, 5.0], [1.0, 1.0])
        >>> s.transform(np.array([[3.0, 5.0]])).tolist()
        [[1.0, 0.0]]
    """

    mean_: np.ndarray
    scale_: np.ndarray

    def fit(self, X: Any) -> Standardizer:
        """Compute ``mean_`` and ``scale_`` (float64, shape ``(p,)``) from ``X (n, p)``."""
        X = _numpy64(X, "fit")
        if X.shape[0] == 0:
            raise DataError("Standardizer.fit: X has no rows")
        n = X.shape[0]
        mean = X.mean(axis=0)
        var = ((X - mean) ** 2).mean(axis=0)
        # A constant column has var ≈ 0 only up to the round-off of its mean:
        # treat var below that round-off as exactly zero variance.
        eps = np.finfo(np.float64).eps
        constant = var <= (n * eps * mean) ** 2 + np.finfo(np.float64).tiny
        self.mean_ = mean
        self.scale_ = np.where(constant, 1.0, np.sqrt(var))
        self.n_features_in_ = X.shape[1]
        return self

    def _check(self, X: Any, method: str) -> None:
        if not hasattr(self, "mean_"):
            raise ConfigError(f"Standardizer.{method}: not fitted; call fit(X_train) first")
        p = X.shape[1] if X.ndim == 2 else None
        if p != self.n_features_in_:
            raise DataError(
                f"Standardizer.{method}: X has shape {tuple(X.shape)}, but the standardizer "
                f"was fitted on {self.n_features_in_} features"
            )

    def transform(self, X: Any) -> Any:
        """``(X − mean_) / scale_``."""
        return self._apply(X, "transform", inverse=False)

    def inverse_transform(self, Z: Any) -> Any:
        """``Z · scale_ + mean_``, undoing :meth:`transform`."""
        return self._apply(Z, "inverse_transform", inverse=True)

    def fit_transform(self, X: Any) -> Any:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def _apply(self, X: Any, method: str, inverse: bool) -> Any:
        if isinstance(X, torch.Tensor):
            self._check(X, method)
            dtype = X.dtype if X.is_floating_point() else torch.float32
            mean = torch.as_tensor(self.mean_, dtype=dtype, device=X.device)
            scale = torch.as_tensor(self.scale_, dtype=dtype, device=X.device)
            X = X.to(dtype)
            return X * scale + mean if inverse else (X - mean) / scale
        X = np.asarray(X)
        self._check(X, method)
        dtype = X.dtype if X.dtype.kind == "f" else np.float32
        out = X * self.scale_ + self.mean_ if inverse else (X - self.mean_) / self.scale_
        return out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        fitted = f"n_features_in_={self.n_features_in_}" if hasattr(self, "mean_") else ""
        return f"Standardizer({fitted})"


def _numpy64(X: Any, method: str) -> np.ndarray:
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise DataError(f"Standardizer.{method}: X must be 2-D (n, p), got shape {X.shape}")
    return X


def standardize(split: Split) -> tuple[Split, Standardizer]:
    """Fit a :class:`Standardizer` on ``split.train.X`` and apply it to all three parts.

    Targets are left as they are.

    Example:
        >>> from gradwise.data import wine
        >>> (train, val, test), scaler = standardize(split(wine()))
        >>> bool(abs(train.X.mean(0)).max() < 1e-5)
        True
    """
    scaler = Standardizer().fit(split.train.X)
    parts = (dataclasses.replace(t, X=scaler.transform(t.X)) for t in split)
    return Split(*parts), scaler
