"""The four output heads, their factories and the ``head(name, n)`` registry.

A model ends in a ``Linear`` layer that outputs raw scores (logits). The head
owns everything that turns those scores into a loss, probabilities or labels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gradwise.errors import ConfigError, HeadError, unknown
from gradwise.nn._head import Head, as_tensor, first_true, show_value, where_text


class _BinaryHead(Head):
    name = "binary"
    default_metrics = ("accuracy",)

    def __init__(self, pos_weight: float | None = None) -> None:
        if pos_weight is not None and (
            isinstance(pos_weight, bool)
            or not isinstance(pos_weight, (int, float))
            or not pos_weight > 0
        ):
            raise ConfigError(f"binary head: pos_weight must be a number > 0, got {pos_weight!r}")
        pw = None if pos_weight is None else torch.tensor([float(pos_weight)])
        super().__init__(1, nn.BCEWithLogitsLoss(pos_weight=pw))

    def _align(self, output: Tensor, target: Tensor) -> Tensor:
        if output.ndim == 1:  # a model that already squeezed its single logit
            target = target.reshape(-1)
        return super()._align(output, target)

    def prepare_target(self, y: Tensor) -> Tensor:
        y = as_tensor(y)
        return y.reshape(-1, 1).float()

    def probs(self, output: Tensor) -> Tensor:
        """P(y = 1), shape ``(N,)``: ``sigmoid`` of the single logit."""
        return torch.sigmoid(output).reshape(-1)

    def predict(self, output: Tensor) -> Tensor:
        """Labels 0/1, shape ``(N,)``: 1 where the logit is > 0 (probability > 0.5)."""
        return (output > 0).reshape(-1).long()

    def check_targets(self, y: Any) -> None:
        y = as_tensor(y)
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
            raise HeadError(
                f"binary head: targets must have shape (N,) or (N, 1), got {tuple(y.shape)}"
            )
        self._check_integral(y)
        bad = first_true((y != 0) & (y != 1))
        if bad is not None:
            raise HeadError(
                f"binary head: target {show_value(y, bad)} at {where_text(bad)} is not a binary label; "
                "allowed values are 0 and 1"
            )


class _MulticlassHead(Head):
    name = "multiclass"
    default_metrics = ("accuracy",)

    def __init__(self, num_classes: int, weight: Any = None, label_smoothing: float = 0.0) -> None:
        w = None if weight is None else torch.as_tensor(weight, dtype=torch.float32)
        if w is not None and w.shape != (num_classes,):
            raise ConfigError(
                f"multiclass head: weight must have {num_classes} entries, got shape "
                f"{tuple(w.shape)}"
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(
                f"multiclass head: label_smoothing must be in [0, 1), got {label_smoothing!r}"
            )
        super().__init__(
            num_classes, nn.CrossEntropyLoss(weight=w, label_smoothing=label_smoothing)
        )

    def _align(self, output: Tensor, target: Tensor) -> Tensor:
        target = target.to(output.device)
        if output.ndim != 2 or target.shape != output.shape[:1]:
            raise HeadError(
                f"multiclass head: expected output (N, {self.out_features}) and target (N,), "
                f"got output {tuple(output.shape)} and target {tuple(target.shape)}"
            )
        return target

    def prepare_target(self, y: Tensor) -> Tensor:
        y = as_tensor(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.reshape(-1)
        return y.long()

    def probs(self, output: Tensor) -> Tensor:
        """Class probabilities, shape ``(N, K)``: ``softmax`` over the last dim."""
        return torch.softmax(output, dim=-1)

    def predict(self, output: Tensor) -> Tensor:
        """Class indices, shape ``(N,)``: ``argmax`` of the logits."""
        return output.argmax(dim=-1)

    def check_targets(self, y: Any) -> None:
        y = as_tensor(y)
        if y.ndim == 2 and y.shape[1] == self.out_features and y.shape[1] != 1:
            raise HeadError(
                f"multiclass head: got a (N, {y.shape[1]}) target, which looks one-hot; "
                "pass class indices of shape (N,) (e.g. y.argmax(1))"
            )
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
            raise HeadError(f"multiclass head: targets must have shape (N,), got {tuple(y.shape)}")
        self._check_integral(y)
        k = self.out_features
        bad = first_true((y < 0) | (y >= k))
        if bad is not None:
            raise HeadError(
                f"multiclass head: class index {show_value(y, bad)} at {where_text(bad)} is out of "
                f"range; with {k} classes the labels must be 0..{k - 1}"
            )


class _MultilabelHead(Head):
    name = "multilabel"
    default_metrics = ("accuracy",)

    def __init__(self, num_labels: int, pos_weight: Any = None) -> None:
        pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)
        if pw is not None and pw.shape not in ((), (num_labels,)):
            raise ConfigError(
                f"multilabel head: pos_weight must be a number or have {num_labels} entries, "
                f"got shape {tuple(pw.shape)}"
            )
        super().__init__(num_labels, nn.BCEWithLogitsLoss(pos_weight=pw))

    def prepare_target(self, y: Tensor) -> Tensor:
        return as_tensor(y).float()

    def probs(self, output: Tensor) -> Tensor:
        """Per-label probabilities, shape ``(N, K)``: ``sigmoid`` of each logit."""
        return torch.sigmoid(output)

    def predict(self, output: Tensor) -> Tensor:
        """0/1 label matrix, shape ``(N, K)``: 1 where the label's logit is > 0."""
        return (output > 0).long()

    def check_targets(self, y: Any) -> None:
        y = as_tensor(y)
        k = self.out_features
        if y.ndim != 2 or y.shape[1] != k:
            raise HeadError(
                f"multilabel head: targets must be a 0/1 matrix of shape (N, {k}), "
                f"got shape {tuple(y.shape)}"
            )
        self._check_integral(y)
        bad = first_true((y != 0) & (y != 1))
        if bad is not None:
            raise HeadError(
                f"multilabel head: target {show_value(y, bad)} at {where_text(bad)} is not 0 or 1; "
                "each label column must be a 0/1 indicator"
            )


class _RegressionHead(Head):
    name = "regression"
    default_metrics = ("mse", "mae", "r2")
    _is_classifier = False

    def __init__(self, num_outputs: int = 1) -> None:
        super().__init__(num_outputs, nn.MSELoss())

    def _align(self, output: Tensor, target: Tensor) -> Tensor:
        if output.ndim == 1 and self.out_features == 1:
            target = target.reshape(-1)
        return super()._align(output, target)

    def prepare_target(self, y: Tensor) -> Tensor:
        y = as_tensor(y)
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        return y if y.is_floating_point() else y.float()

    def probs(self, output: Tensor) -> Tensor:
        """The outputs themselves (identity), shaped like :meth:`predict`."""
        return self.predict(output)

    def predict(self, output: Tensor) -> Tensor:
        """Predicted values: ``(N,)`` for one output, ``(N, k)`` for ``k`` outputs."""
        return output.reshape(-1) if self.out_features == 1 else output

    def check_targets(self, y: Any) -> None:
        y = as_tensor(y)
        k = self.out_features
        ok = (y.ndim == 1 and k == 1) or (y.ndim == 2 and y.shape[1] == k)
        if not ok and y.ndim == 1 and not torch.is_floating_point(y):
            raise HeadError(
                f"regression head: the targets are class labels ({y.unique().numel()} "
                f"distinct integers, one per row), not {k} numbers to predict per row; "
                "to predict the class, use head: multiclass (or binary for two classes)"
            )
        if not ok:
            want = f"(N,) or (N, {k})" if k == 1 else f"(N, {k})"
            raise HeadError(
                f"regression head: targets must have shape {want}, got {tuple(y.shape)}"
            )
        if y.dtype == torch.bool or y.is_complex():
            raise HeadError(f"regression head: targets must be real numbers, got {y.dtype}")
        self._check_finite(y)


def _count(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field} must be an int >= {minimum}, got {value!r}")
    return value


def binary(pos_weight: float | None = None) -> Head:
    """Head for two classes with a single logit ``z`` per example.

    Loss: ``BCEWithLogitsLoss``, ``−[y·log σ(z) + (1−y)·log(1−σ(z))]``, computed
    as ``max(z, 0) − z·y + log(1 + e^(−|z|))`` so it never overflows.
    Probabilities ``σ(z)``; prediction ``z > 0``. Targets: 0/1 of shape ``(N,)``.

    Args:
        pos_weight: weight of the positive class in the loss (e.g. n_neg / n_pos).

    Example:
        >>> import torch
        >>> h = binary()
        >>> round(h(torch.zeros(2, 1), torch.tensor([0, 1])).item(), 4)  # log 2
        0.6931
    """
    return _BinaryHead(pos_weight)


def multiclass(num_classes: int, *, weight: Any = None, label_smoothing: float = 0.0) -> Head:
    """Head for ``K`` mutually exclusive classes with ``K`` logits per example.

    Loss: ``CrossEntropyLoss``, ``−z_y + log Σ_j e^(z_j)`` (log-sum-exp computed
    after subtracting ``max_j z_j``). Probabilities ``softmax(z)``; prediction
    ``argmax z``. Targets: class indices ``0..K−1`` of shape ``(N,)``.

    Args:
        num_classes: ``K >= 2``.
        weight: optional per-class loss weights, length ``K``.
        label_smoothing: as in ``torch.nn.CrossEntropyLoss``.

    Example:
        >>> import torch
        >>> h = multiclass(3)
        >>> round(h(torch.zeros(1, 3), torch.tensor([2])).item(), 4)  # log 3
        1.0986
    """
    return _MulticlassHead(
        _count("multiclass: num_classes", num_classes, 2), weight, label_smoothing
    )


def multilabel(num_labels: int, *, pos_weight: Any = None) -> Head:
    """Head for ``K`` independent yes/no labels: one logit per label.

    Loss: ``BCEWithLogitsLoss`` averaged over examples and labels. Probabilities
    ``σ(z_k)`` per label; prediction ``z_k > 0``. Targets: a 0/1 matrix ``(N, K)``.

    Args:
        num_labels: ``K >= 1``.
        pos_weight: optional positive-class weight, a number or one per label.

    Example:
        >>> import torch
        >>> multilabel(2).predict(torch.tensor([[1.5, -0.3]]))
        tensor([[1, 0]])
    """
    return _MultilabelHead(_count("multilabel: num_labels", num_labels, 1), pos_weight)


def regression(num_outputs: int = 1) -> Head:
    """Head for real-valued targets: mean squared error on the raw outputs.

    Loss: ``MSELoss``, ``mean (ŷ − y)²``. Probabilities and predictions are the
    outputs. Targets: ``(N,)`` for one output, ``(N, k)`` for ``k`` outputs.

    Example:
        >>> import torch
        >>> regression()(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])).item()
        2.5
    """
    return _RegressionHead(_count("regression: num_outputs", num_outputs, 1))


HEADS: tuple[str, ...] = ("binary", "multiclass", "multilabel", "regression")
"""Names accepted by :func:`head`."""


def head(name: str, n: int | None = None) -> Head:
    """Build a head by name; ``n`` is the number of classes, labels or outputs.

    ``n`` is required for ``multiclass`` and ``multilabel``, optional for
    ``regression`` (default 1) and must be ``None`` or 1 for ``binary``.

    Example:
        >>> head("multiclass", 10).out_features
        10
    """
    if name == "binary":
        if n not in (None, 1):
            raise ConfigError(
                f"head 'binary' has a single logit (two classes), but {n!r} outputs are "
                "needed; use head: multiclass for several classes (head: multilabel for "
                "several yes/no labels)"
            )
        return binary()
    if name in ("multiclass", "multilabel"):
        if n is None:
            raise ConfigError(
                f"head {name!r} needs n, the number of "
                f"{'classes' if name == 'multiclass' else 'labels'}"
            )
        return multiclass(n) if name == "multiclass" else multilabel(n)
    if name == "regression":
        return regression(1 if n is None else n)
    raise unknown("head", str(name), HEADS)
