"""Turn raw target values into class indices or floats, inferring the task."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradwise.data._table import TASKS
from gradwise.errors import DataError, unknown

MAX_INFERRED_CLASSES = 20
"""An integer-valued target with at most this many distinct values is read as classes."""

Locate = Callable[[int], str]  # row index -> "line 7" / "row 6", for error messages


def _label(v: Any) -> Any:
    # Integral numbers become Python ints so that `classes` prints as [1, 2], not [1.0, 2.0].
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    return v.item() if isinstance(v, np.generic) else v


def infer_task(values: np.ndarray, what: str) -> str:
    """The task for targets ``values`` (numeric float64 or strings), by the rules:

    * several target columns: ``multilabel`` when all values are 0/1, else ``regression``;
    * text labels: ``binary`` for two distinct labels, else ``multiclass``;
    * integer-valued numbers: ``binary`` for 2 distinct values, ``multiclass`` for
      3..:data:`MAX_INFERRED_CLASSES`, else ``regression``; other numbers: ``regression``.
    """
    numeric = values.dtype.kind == "f"
    if values.ndim == 2:
        if not numeric:
            raise DataError(f"{what}: several target columns must be numeric")
        return "multilabel" if np.isin(values, (0.0, 1.0)).all() else "regression"
    distinct = np.unique(values)
    if len(distinct) < 2:
        shown = _label(distinct[0]) if len(distinct) else "nothing"
        raise DataError(
            f"{what}: the target has a single value ({shown!r}), so its task cannot be "
            "inferred; pass task= explicitly"
        )
    if not numeric:
        return "binary" if len(distinct) == 2 else "multiclass"
    if np.array_equal(distinct, np.round(distinct)) and len(distinct) <= MAX_INFERRED_CLASSES:
        return "binary" if len(distinct) == 2 else "multiclass"
    return "regression"


def encode_target(
    values: np.ndarray,
    task: str | None,
    what: str,
    locate: Locate,
    columns: Sequence[str],
) -> tuple[np.ndarray, str, int | None, list[Any] | None]:
    """Encode ``values`` for ``task`` (inferred when ``None``).

    Args:
        values: ``(n,)`` or ``(n, k)``; float64 (already checked finite) or strings.
        task: one of :data:`~gradwise.data.TASKS` or ``None``.
        what: the source, for messages (a file name).
        locate: maps a row index to its place in the source (``"line 7"``).
        columns: target column names, for messages.

    Returns:
        ``(y, task, n_classes, classes)``; classifier labels that are not already
        ``0..K−1`` are mapped to the index of their sorted position, and
        ``classes[i]`` is the original label of index ``i``.
    """
    if task is not None and task not in TASKS:
        raise unknown("task", str(task), TASKS)
    if values.ndim == 2 and values.shape[1] == 1 and task != "multilabel":
        values = values[:, 0]
    task = task or infer_task(values, what)
    numeric = values.dtype.kind == "f"

    if task == "regression":
        if not numeric:
            i = _first_non_numeric(values)
            raise DataError(
                f"{what}: target {columns[0]!r}, {locate(i)}: non-numeric value "
                f"{str(values[i])!r}; a regression target must be numeric"
            )
        return values.astype(np.float32), task, None, None

    if numeric:
        fractional = values != np.round(values)
        if fractional.any():
            i, j = _first(fractional)
            value = float(values[i, j] if values.ndim == 2 else values[i])
            raise DataError(
                f"{what}: float targets for a classifier: target {columns[j]!r}, {locate(i)} "
                f"has {value!r}; {task} labels must be integers or text "
                "(use task='regression' for numbers)"
            )

    if task == "multilabel":
        if values.ndim != 2 or not numeric:
            raise DataError(
                f"{what}: a multilabel target needs several numeric 0/1 columns, got "
                f"{', '.join(map(repr, columns))}"
            )
        bad = ~np.isin(values, (0.0, 1.0))
        if bad.any():
            i, j = _first(bad)
            raise DataError(
                f"{what}: multilabel target {columns[j]!r}, {locate(i)} has "
                f"{_label(values[i, j])!r}; each label column must be 0 or 1"
            )
        return values.astype(np.int64), task, values.shape[1], list(columns)

    if values.ndim != 1:
        raise DataError(f"{what}: a {task} target is a single column, got {list(columns)}")
    classes, y = np.unique(values, return_inverse=True)
    if task == "binary" and len(classes) > 2:
        shown = ", ".join(repr(_label(c)) for c in classes[:5])
        raise DataError(
            f"{what}: binary target {columns[0]!r} has {len(classes)} distinct labels "
            f"({shown}{', ...' if len(classes) > 5 else ''}); a binary target has at most 2 "
            "(use task='multiclass')"
        )
    if numeric and task == "binary" and np.isin(classes, (0.0, 1.0)).all():
        # 0/1 labels keep their meaning even when one of them is absent.
        return values.astype(np.int64), task, 2, [0, 1]
    labels = [_label(c) for c in classes]
    k = 2 if task == "binary" else len(classes)
    return y.reshape(-1).astype(np.int64), task, k, labels


def _first(mask: np.ndarray) -> tuple[int, int]:
    hit = np.argwhere(mask)[0]
    return (int(hit[0]), int(hit[1]) if mask.ndim == 2 else 0)


def _first_non_numeric(values: np.ndarray) -> int:
    for i, v in enumerate(values):
        try:
            float(v)
        except ValueError:
            return i
    return 0
