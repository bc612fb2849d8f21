"""Streaming metrics: accumulate over batches on the device, read once per epoch.

A metric follows the small :class:`Metric` protocol: ``reset()``, then
``update(output, target)`` per batch, then ``compute() -> float``. Updates
only add to running tensors on the batch's device, so there is no host sync
until ``compute``. ``output`` is the raw model output and ``target`` the
prepared target (the head's ``prepare_target``), exactly what the loss sees.

=============  ==========================================================  ========
name           formula over all N examples seen since ``reset``            better
=============  ==========================================================  ========
``accuracy``   (1/N) Σ [pred_i = y_i]; a multilabel row counts only when   higher
               every label is right (scikit-learn's subset accuracy)
``mse``        (1/(N·k)) Σ (ŷ − y)², over every output column              lower
``mae``        (1/(N·k)) Σ |ŷ − y|                                         lower
``r2``         mean over columns of 1 − Σ(ŷ − y)² / Σ(y − ȳ)²              higher
=============  ==========================================================  ========

Example:
    >>> import torch
    >>> m = get_metric("accuracy")
    >>> m.update(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    >>> m.compute()
    0.5
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from gradwise.errors import ConfigError, unknown

__all__ = ["MAE", "METRICS", "MSE", "R2", "Accuracy", "Metric", "get_metric"]


@runtime_checkable
class Metric(Protocol):
    """What the trainer needs from a metric."""

    name: str
    higher_is_better: bool

    def reset(self) -> None: ...
    def update(self, output: Tensor, target: Tensor) -> None: ...
    def compute(self) -> float: ...


def _default_predict(output: Tensor) -> Tensor:
    # Without a head: one logit per example is a binary score (positive when
    # > 0), several logits are class scores.
    if output.ndim == 1 or output.shape[-1] == 1:
        return (output > 0).reshape(-1).long()
    return output.argmax(dim=-1)


def _like(target: Tensor, pred: Tensor) -> Tensor:
    # Heads keep binary targets as (N, 1) floats and predictions as (N,) ints;
    # compare them element for element.
    if target.shape != pred.shape and target.numel() == pred.numel():
        target = target.reshape(pred.shape)
    return target


class _Streaming:
    """Shared state handling: running sums are tensors created on first update."""

    name = ""
    higher_is_better = False
    _keys: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._sums: dict[str, Tensor] = {}
        # Counts come from shapes, known on the host: keep them as ints so an
        # update never copies a number to the device.
        self._count = 0

    def _add(self, key: str, value: Tensor) -> None:
        prev = self._sums.get(key)
        self._sums[key] = value if prev is None else prev + value

    def state_dict(self) -> dict[str, Any]:
        """Running sums, for a checkpoint taken in the middle of an epoch."""
        return {"sums": dict(self._sums), "count": self._count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._sums, self._count = dict(state["sums"]), int(state["count"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Accuracy(_Streaming):
    """Fraction of examples whose predicted label equals the target.

    Args:
        predict: maps raw outputs to labels; a head's ``predict`` (binary,
            multiclass, multilabel). Default: ``output > 0`` for one output
            column, else ``argmax`` over the last dim.
    """

    name = "accuracy"
    higher_is_better = True

    def __init__(self, predict: Callable[[Tensor], Tensor] | None = None) -> None:
        self._predict = predict or _default_predict
        super().__init__()

    def update(self, output: Tensor, target: Tensor) -> None:
        pred = self._predict(output)
        hit = pred == _like(target, pred)
        if hit.ndim > 1:  # multilabel: a row is right only when all labels are
            hit = hit.reshape(hit.shape[0], -1).all(dim=1)
        self._add("correct", hit.sum())
        self._count += hit.shape[0]

    def compute(self) -> float:
        return float(self._sums["correct"]) / self._count if self._count else float("nan")


class _Regression(_Streaming):
    def __init__(self, predict: Callable[[Tensor], Tensor] | None = None) -> None:
        self._predict = predict or (lambda out: out)
        super().__init__()

    def _pair(self, output: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        # float64 accumulation: sums of squares over a large epoch lose digits in float32.
        pred = self._predict(output).double()
        target = _like(target, pred).double()
        return pred, target


class MSE(_Regression):
    """Mean squared error ``mean (ŷ − y)²`` over examples and output columns."""

    name = "mse"

    def update(self, output: Tensor, target: Tensor) -> None:
        pred, y = self._pair(output, target)
        self._add("sum", (pred - y).square().sum())
        self._count += y.numel()

    def compute(self) -> float:
        return float(self._sums["sum"]) / self._count if self._count else float("nan")


class MAE(MSE):
    """Mean absolute error ``mean |ŷ − y|`` over examples and output columns."""

    name = "mae"

    def update(self, output: Tensor, target: Tensor) -> None:
        pred, y = self._pair(output, target)
        self._add("sum", (pred - y).abs().sum())
        self._count += y.numel()


class R2(_Regression):
    """Coefficient of determination, averaged over output columns.

    ``R² = 1 − SS_res / SS_tot`` with ``SS_res = Σ(ŷ − y)²`` and
    ``SS_tot = Σ(y − ȳ)²``. ``SS_tot`` is merged batch by batch with Chan's
    parallel-variance update, ``M2 = M2_a + M2_b + δ²·n_a·n_b/n`` with
    ``δ = ȳ_b − ȳ_a``, which stays exact where ``Σy² − (Σy)²/n`` would cancel.
    A constant target column gives R² = 1 when predicted exactly, else 0
    (scikit-learn's convention).
    """

    name = "r2"
    higher_is_better = True

    def update(self, output: Tensor, target: Tensor) -> None:
        pred, y = self._pair(output, target)
        if y.ndim == 1:
            y, pred = y.unsqueeze(1), pred.unsqueeze(1)
        y, pred = y.reshape(y.shape[0], -1), pred.reshape(pred.shape[0], -1)
        n_b = y.shape[0]
        mean_b = y.mean(dim=0)
        m2_b = (y - mean_b).square().sum(dim=0)
        self._add("ss_res", (pred - y).square().sum(dim=0))
        n_a = self._count
        self._count = n = n_a + n_b
        if n_a == 0:
            self._sums.update(mean=mean_b, m2=m2_b)
            return
        mean_a, m2_a = self._sums["mean"], self._sums["m2"]
        delta = mean_b - mean_a
        self._sums["m2"] = m2_a + m2_b + delta.square() * (n_a * n_b / n)
        self._sums["mean"] = mean_a + delta * (n_b / n)

    def compute(self) -> float:
        if not self._count:
            return float("nan")
        ss_res, ss_tot = self._sums["ss_res"], self._sums["m2"]
        ok = ss_tot > 0
        perfect = torch.where(ss_res == 0, 1.0, 0.0).to(ss_res)
        r2 = torch.where(ok, 1 - ss_res / torch.where(ok, ss_tot, 1.0), perfect)
        return float(r2.mean())


METRICS: dict[str, type[_Streaming]] = {"accuracy": Accuracy, "mse": MSE, "mae": MAE, "r2": R2}
"""Metric names accepted by :func:`get_metric`."""


def get_metric(name: str | Metric, head: Any = None) -> Metric:
    """Build a fresh metric by name; ``head.predict`` turns outputs into predictions.

    Args:
        name: ``"accuracy"``, ``"mse"``, ``"mae"`` or ``"r2"``; a :class:`Metric`
            object is returned unchanged.
        head: a gradwise head; its ``predict`` maps raw outputs to labels
            (classifiers) or values (regression).

    Example:
        >>> get_metric("r2").higher_is_better
        True
    """
    if not isinstance(name, str):
        if isinstance(name, Metric):
            return name
        raise ConfigError(
            f"metrics: expected a metric name or a Metric object, got {type(name).__name__}"
        )
    cls = METRICS.get(name)
    if cls is None:
        raise unknown("metric", name, METRICS)
    predict = getattr(head, "predict", None)
    return cls(predict)
