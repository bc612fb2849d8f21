"""The in-memory dataset every loader returns."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gradwise.errors import DataError, unknown

TASKS: tuple[str, ...] = ("binary", "multiclass", "multilabel", "regression")
"""Learning tasks a :class:`Table` can hold; they match the heads of :mod:`gradwise.nn`."""


@dataclass(eq=False)
class Table:
    """Features, targets and what they mean.

    Attributes:
        X: ``float32`` features of shape ``(n, p)``.
        y: targets: ``int64 (n,)`` class indices ``0..K−1`` for ``binary`` and
            ``multiclass``; ``int64 (n, K)`` 0/1 indicators for ``multilabel``;
            ``float32 (n,)`` or ``(n, k)`` for ``regression``.
        feature_names: one name per column of ``X``.
        target_name: name of the target (comma-joined when there are several columns).
        task: one of :data:`TASKS`.
        n_classes: ``K`` for classifiers (2 for ``binary``, labels for ``multilabel``),
            ``None`` for regression.
        name: dataset name.
        coef: true coefficients ``(p,)`` when the data were simulated from a linear model.
        image_shape: ``(C, H, W)`` of one example when the features are pixels.
        classes: the original label of each class index (e.g. ``["setosa", ...]``).

    The constructor converts ``X``/``y`` to the dtypes above and raises
    :class:`~gradwise.errors.DataError` when shapes or labels do not fit ``task``.

    Example:
        >>> t = Table(X=[[0.0, 1.0], [2.0, 3.0]], y=[0, 1], feature_names=["a", "b"],
        ...           target_name="label", task="binary")
        >>> len(t), t.n_features, t.out_features, t.n_classes
        (2, 2, 1, 2)
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str
    task: str
    n_classes: int | None = None
    name: str = "table"
    coef: np.ndarray | None = None
    image_shape: tuple[int, ...] | None = None
    classes: list[Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise unknown("task", str(self.task), TASKS)
        X = np.ascontiguousarray(self.X, dtype=np.float32)
        if X.ndim != 2:
            raise DataError(f"Table {self.name!r}: X must be 2-D (n, p), got shape {X.shape}")
        n, p = X.shape
        y = np.asarray(self.y)
        if y.shape[:1] != (n,):
            raise DataError(
                f"Table {self.name!r}: X has {n} rows but y has shape {y.shape}; "
                "they need one target per row"
            )
        self.feature_names = [str(f) for f in self.feature_names]
        if len(self.feature_names) != p:
            raise DataError(
                f"Table {self.name!r}: {len(self.feature_names)} feature names for {p} columns"
            )
        self.X = X
        self.y = self._check_y(y)
        if self.coef is not None:
            self.coef = np.asarray(self.coef, dtype=np.float32)
        if self.image_shape is not None:
            self.image_shape = tuple(int(s) for s in self.image_shape)
            if int(np.prod(self.image_shape)) != p:
                raise DataError(
                    f"Table {self.name!r}: image_shape {self.image_shape} does not hold {p} "
                    "features"
                )

    def _check_y(self, y: np.ndarray) -> np.ndarray:
        where = f"Table {self.name!r} ({self.task})"
        if self.task == "regression":
            if y.ndim not in (1, 2):
                raise DataError(f"{where}: y must be (n,) or (n, k), got shape {y.shape}")
            self.n_classes = None
            return np.ascontiguousarray(y, dtype=np.float32)
        if y.dtype.kind == "f" and y.size and not np.array_equal(y, np.round(y)):
            raise DataError(f"{where}: y must hold integer class labels, got float values")
        if self.task == "multilabel":
            if y.ndim != 2:
                raise DataError(f"{where}: y must be a 0/1 matrix (n, K), got shape {y.shape}")
            y = np.ascontiguousarray(y, dtype=np.int64)
            if y.size and not np.isin(y, (0, 1)).all():
                raise DataError(f"{where}: y must only hold 0 and 1")
            self.n_classes = y.shape[1]
            return y
        if y.ndim != 1:
            raise DataError(f"{where}: y must be class indices of shape (n,), got {y.shape}")
        first = None if y.dtype.kind in "biuf" else next(
            (v for v in y.tolist() if not isinstance(v, (int, float))), None
        )
        if first is not None:
            raise DataError(
                f"{where}: y must be class indices 0..K-1, got labels such as {first!r}; "
                "map them to indices and pass the labels as classes= (read_csv does this)"
            )
        y = np.ascontiguousarray(y, dtype=np.int64)
        if self.task == "binary":
            self.n_classes = 2 if self.n_classes is None else self.n_classes
        elif self.n_classes is None:
            self.n_classes = int(y.max()) + 1 if y.size else 0
        k = self.n_classes
        if (self.task == "binary" and k != 2) or k < 2:
            raise DataError(f"{where}: n_classes={k} does not fit the task")
        if y.size and (y.min() < 0 or y.max() >= k):
            raise DataError(f"{where}: labels must be 0..{k - 1}, found {y.min()}..{y.max()}")
        return y

    def __len__(self) -> int:
        return self.X.shape[0]

    def __repr__(self) -> str:
        k = "" if self.n_classes is None else f", n_classes={self.n_classes}"
        return (
            f"Table(name={self.name!r}, n={len(self)}, p={self.n_features}, "
            f"task={self.task!r}{k}, target={self.target_name!r})"
        )

    @property
    def n_features(self) -> int:
        """Number of feature columns ``p``."""
        return self.X.shape[1]

    @property
    def out_features(self) -> int:
        """Model outputs this task needs: 1 for binary and single-target regression,
        ``K`` for multiclass and multilabel, ``k`` for ``k``-target regression."""
        if self.task == "binary":
            return 1
        if self.task == "regression":
            return 1 if self.y.ndim == 1 else self.y.shape[1]
        return int(self.n_classes)  # type: ignore[arg-type]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, y)`` as new tensors: ``float32`` features, ``int64``/``float32`` targets."""
        return torch.tensor(self.X), torch.tensor(self.y)

    def subset(self, idx: Any) -> Table:
        """The rows ``idx`` (integer indices or a boolean mask), same metadata."""
        idx = np.asarray(idx)
        if idx.size == 0:
            idx = idx.astype(np.int64)  # np.asarray([]) is float64
        if idx.dtype != bool and not np.issubdtype(idx.dtype, np.integer):
            raise DataError(
                f"Table.subset: idx must be integers or a boolean mask, got {idx.dtype}"
            )
        return dataclasses.replace(self, X=self.X[idx], y=self.y[idx])
