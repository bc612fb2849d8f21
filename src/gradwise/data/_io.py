"""Read a :class:`Table` from a CSV or NPZ file, with errors that point at the cell."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gradwise.data._table import Table
from gradwise.data._targets import Locate, encode_target
from gradwise.errors import DataError, closest


def _parse_column(cells: list[str], name: str, where: str, lines: list[int]) -> np.ndarray:
    try:
        col = np.asarray(cells, dtype=np.float64)
    except ValueError:
        # numpy does not say which cell failed; find it for the message.
        for cell, line in zip(cells, lines):
            try:
                float(cell)
            except ValueError:
                shown = "an empty value" if not cell.strip() else f"the value {cell!r}"
                raise DataError(
                    f"{where}: column {name!r}, line {line}: non-numeric feature, {shown}; "
                    "features must be numbers (encode categories as numeric columns first)"
                ) from None
        raise
    _check_finite(col, name, where, lambda i: f"line {lines[i]}", cells)
    return col


def _suggest(name: str, choices: list[str]) -> str:
    # difflib sees no likeness between 'X' and 'x'; a case-only slip is the likeliest one.
    for c in choices:
        if c.lower() == name.lower():
            return f" (did you mean {c!r}?)"
    return closest(name, choices)


def _require_file(path: Path, kind: str) -> None:
    """A missing path or a directory is a user error naming the path, not a traceback."""
    if path.is_file():
        return
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a {kind} file")
    rel = "" if path.is_absolute() else f" (a relative path is read from {Path.cwd()})"
    raise DataError(f"{path}: no such {kind} file{rel}")


def _check_finite(
    col: np.ndarray, name: str, where: str, locate: Locate, cells: list[str] | None = None
) -> None:
    bad = np.flatnonzero(~np.isfinite(col))
    if bad.size:
        i = int(bad[0])
        shown = cells[i] if cells is not None else str(col[i])
        raise DataError(
            f"{where}: column {name!r}, {locate(i)}: value {shown!r} is NaN/inf; "
            "remove or impute missing values before training"
        )


def read_csv(
    path: str | os.PathLike[str],
    target: str | Sequence[str],
    *,
    task: str | None = None,
    delimiter: str = ",",
) -> Table:
    """Read a CSV file with a header row into a :class:`Table`.

    Every column except ``target`` is a feature and must be numeric and finite.
    Blank lines are skipped. Line numbers in errors are those of the file
    (the header is line 1).

    Args:
        path: the CSV file.
        target: name of the target column, or several names (multilabel or
            multi-output regression).
        task: ``"binary"``, ``"multiclass"``, ``"multilabel"``, ``"regression"``,
            or ``None`` to infer it: an integer-valued target with 2 distinct values
            is binary, with at most 20 multiclass, anything else regression; text
            labels are classes. Class labels that are not ``0..K−1`` are mapped to
            ``0..K−1`` in sorted order and kept in ``Table.classes``.
        delimiter: field separator.

    Raises:
        DataError: empty file, missing target column, ragged row, non-numeric or
            NaN/inf feature, bad labels for ``task``. The message names the column,
            the line and the value.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "toy.csv"
        >>> _ = p.write_text("x1,x2,label\\n0.5,1,yes\\n1.5,0,no\\n")
        >>> t = read_csv(p, "label")
        >>> t.task, t.y.tolist(), t.classes
        ('binary', [1, 0], ['no', 'yes'])
    """
    path = Path(path)
    where = str(path)
    targets = [target] if isinstance(target, str) else list(target)
    if not targets:
        raise DataError(f"{where}: no target column given")
    _require_file(path, "CSV")
    # utf-8-sig drops the byte-order mark that spreadsheet exports put before the header.
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise DataError(f"{where}: the file is empty; expected a header row of column names")
        header = [h.strip() for h in header]
        _check_header(header, where)
        for name in targets:
            if name not in header:
                raise DataError(
                    f"{where}: target column {name!r} not found{_suggest(name, header)}; "
                    f"available columns: {', '.join(header)}"
                )
        rows: list[list[str]] = []
        lines: list[int] = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{where}: line {reader.line_num} has {len(row)} fields, but the header "
                    f"has {len(header)} ({', '.join(header)})"
                )
            rows.append(row)
            lines.append(reader.line_num)
    if not rows:
        raise DataError(f"{where}: the file has a header but no data rows")

    columns = list(zip(*rows))
    t_idx = [header.index(name) for name in targets]
    f_idx = [j for j in range(len(header)) if j not in t_idx]
    X = np.empty((len(rows), len(f_idx)), dtype=np.float64)
    for out, j in enumerate(f_idx):
        X[:, out] = _parse_column(list(columns[j]), header[j], where, lines)

    raw = [[c.strip() for c in columns[j]] for j in t_idx]
    for name, cells in zip(targets, raw):
        if "" in cells:
            i = cells.index("")
            raise DataError(f"{where}: target {name!r}, line {lines[i]}: the value is empty")
    try:
        values = np.asarray(raw, dtype=np.float64).T
    except ValueError:
        values = np.asarray(raw, dtype=str).T  # text labels
        if task is None:
            _reject_mixed(raw, targets, where, lines)
    else:
        for name, col, cells in zip(targets, values.T, raw):
            _check_finite(col, name, where, lambda i: f"line {lines[i]}", cells)
    y, task, k, classes = encode_target(values, task, where, lambda i: f"line {lines[i]}", targets)
    return Table(
        X=X,
        y=y,
        feature_names=[header[j] for j in f_idx],
        target_name=",".join(targets),
        task=task,
        n_classes=k,
        name=path.stem,
        classes=classes,
    )


def _reject_mixed(raw: list[list[str]], targets: list[str], where: str, lines: list[int]) -> None:
    # A numeric column with one typo would otherwise be read as hundreds of text classes.
    for name, cells in zip(targets, raw):
        numeric = [_is_number(c) for c in cells]
        if any(numeric) and not all(numeric):
            i = numeric.index(False)
            raise DataError(
                f"{where}: target {name!r} mixes numbers and text: line {lines[i]} has "
                f"{cells[i]!r}; fix the value, or pass task= to read every label as text"
            )


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _check_header(header: list[str], where: str) -> None:
    for j, name in enumerate(header):
        if not name:
            raise DataError(f"{where}: header column {j + 1} has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{where}: column name {name!r} appears twice in the header")
        seen.add(name)


def read_npz(
    path: str | os.PathLike[str],
    x_key: str = "X",
    y_key: str = "y",
    task: str | None = None,
) -> Table:
    """Read features and targets from a NumPy ``.npz`` archive.

    ``X`` must be a numeric ``(n, p)`` array without NaN/inf; ``y`` has ``n``
    rows; the task is inferred as in :func:`read_csv`. When the archive holds a
    ``feature_names`` array it names the columns, else they are ``x0, x1, ...``.
    Row indices in errors count from 0.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "toy.npz"
        >>> np.savez(p, X=np.eye(3), y=np.array([0.5, 1.5, 2.0]))
        >>> read_npz(p).task
        'regression'
    """
    path = Path(path)
    where = str(path)
    _require_file(path, ".npz")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{where}: not a readable .npz archive ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{where}: expected an .npz archive of named arrays, got a single array")
    with archive:
        keys = list(archive.files)
        for key, field in ((x_key, "x_key"), (y_key, "y_key")):
            if key not in keys:
                raise DataError(
                    f"{where}: {field} {key!r} not found{_suggest(key, keys)}; "
                    f"keys in the file: {', '.join(keys) or 'none'}"
                )
        X = archive[x_key]
        y = archive[y_key]
        names = archive["feature_names"] if "feature_names" in keys else None

    if X.ndim != 2:
        hint = " (use X.reshape(-1, 1) for a single feature)" if X.ndim == 1 else ""
        raise DataError(f"{where}: {x_key!r} must be 2-D (n, p), got shape {X.shape}{hint}")
    if X.shape[0] == 0:
        raise DataError(f"{where}: {x_key!r} has no rows")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where}: {x_key!r} must be numeric, got dtype {X.dtype}")
    if y.shape[:1] != X.shape[:1] or y.ndim > 2:
        raise DataError(
            f"{where}: {y_key!r} has shape {y.shape}, but {x_key!r} has {X.shape[0]} rows; "
            "y needs one entry (or row) per row of X"
        )
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        raise DataError(
            f"{where}: {x_key!r} row {i}, column {j} is {float(X[i, j])!r} (NaN/inf); remove or "
            "impute missing values before training"
        )
    feature_names = (
        [str(s) for s in names] if names is not None else [f"x{j}" for j in range(X.shape[1])]
    )
    if len(feature_names) != X.shape[1]:
        raise DataError(
            f"{where}: 'feature_names' has {len(feature_names)} entries for {X.shape[1]} columns"
        )

    if y.dtype.kind in "biuf":
        values = y.astype(np.float64)
        bad = np.argwhere(~np.isfinite(values))
        if bad.size:
            idx = tuple(int(v) for v in bad[0])
            at = f"row {idx[0]}" + (f", column {idx[1]}" if len(idx) == 2 else "")
            raise DataError(
                f"{where}: {y_key!r} {at} is {float(values[idx])!r} (NaN/inf); "
                "targets must be finite"
            )
    elif y.dtype.kind in "US":
        values = y.astype(str)
    else:
        raise DataError(f"{where}: {y_key!r} must be numbers or text labels, got dtype {y.dtype}")
    columns = [y_key] if values.ndim == 1 else [f"{y_key}[:, {j}]" for j in range(values.shape[1])]
    y_enc, task, k, classes = encode_target(values, task, where, lambda i: f"row {i}", columns)
    return Table(
        X=X,
        y=y_enc,
        feature_names=feature_names,
        target_name=y_key,
        task=task,
        n_classes=k,
        name=path.stem,
        classes=classes,
    )
