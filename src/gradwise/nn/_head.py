"""The output-head interface and the checks shared by every head.

A model ends in a ``Linear`` layer that outputs raw scores (logits). The head
owns everything that turns those scores into a loss, probabilities or labels,
and checks before training that the model and the labels fit the task.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gradwise.errors import HeadError

# Leaf modules that only pass values through; a final sigmoid hidden behind
# them still squashes the logits.
_PASSTHROUGH = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.AlphaDropout, nn.Flatten)
_SQUASH = (nn.Sigmoid, nn.Softmax, nn.LogSoftmax)


def as_tensor(y: Any) -> Tensor:
    return y if isinstance(y, Tensor) else torch.as_tensor(np.asarray(y))


def where_text(index: tuple[int, ...]) -> str:
    return f"row {index[0]}" if len(index) == 1 else f"row {index[0]}, column {index[1]}"


def show_value(y: Tensor, index: tuple[int, ...]) -> str:
    v = y[index].detach().cpu()
    if not v.is_floating_point():
        return repr(v.item())
    # shortest digits that identify the value in its own dtype: 0.3, not 0.30000001192
    x = v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
    return np.format_float_positional(x[()], trim="-")


def first_true(mask: Tensor) -> tuple[int, ...] | None:
    """Index of the first True entry of ``mask`` (row-major), or None."""
    hits = mask.nonzero()
    return None if hits.numel() == 0 else tuple(int(i) for i in hits[0])


class Head(nn.Module, abc.ABC):
    """Base class of the output heads; use :func:`binary`, :func:`multiclass`,
    :func:`multilabel` or :func:`regression` to build one.

    A head is an ``nn.Module`` so that ``head.to(device)`` moves the buffers of
    its loss (class weights), and so that it can be passed wherever a loss
    module is expected: ``head(output, target)`` returns the scalar loss.

    Attributes:
        name: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        out_features: number of model outputs the head expects.
        loss: the ``torch.nn`` loss; it takes raw logits for the classifiers.
        default_metrics: metric names a trainer reports for this task.
    """

    name: str = ""
    default_metrics: tuple[str, ...] = ()
    _is_classifier: bool = True

    def __init__(self, out_features: int, loss: nn.Module) -> None:
        super().__init__()
        self.out_features = out_features
        self.loss = loss

    # -- loss --------------------------------------------------------------

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        """Loss of raw model ``output`` against ``target``, after :meth:`prepare_target`."""
        target = self._align(output, self.prepare_target(target))
        return self.loss(output, target)

    def _align(self, output: Tensor, target: Tensor) -> Tensor:
        target = target.to(device=output.device)
        if target.is_floating_point():
            target = target.to(output.dtype)
        if target.shape != output.shape:
            raise HeadError(
                f"{self.name} head: target shape {tuple(target.shape)} does not match "
                f"model output shape {tuple(output.shape)}"
            )
        return target

    @abc.abstractmethod
    def prepare_target(self, y: Tensor) -> Tensor:
        """Convert labels to the dtype and shape that :attr:`loss` wants."""

    # -- outputs -------------------------------------------------------------

    @abc.abstractmethod
    def probs(self, output: Tensor) -> Tensor:
        """Probabilities (classifiers) or values (regression) from raw outputs."""

    @abc.abstractmethod
    def predict(self, output: Tensor) -> Tensor:
        """Labels (classifiers) or values (regression) from raw outputs."""

    # -- checks --------------------------------------------------------------

    def check_model(self, model: nn.Module) -> None:
        """Raise :class:`HeadError` when ``model`` cannot feed this head.

        Two mistakes are caught before any training step:

        * the last leaf module (in registration order, which is forward order
          for ``nn.Sequential``) is ``Sigmoid``/``Softmax``/``LogSoftmax`` while
          the loss expects logits: the loss would squash the outputs twice;
        * the last ``nn.Linear`` has ``out_features`` different from the head's.
        """
        leaves = [
            (path, m)
            for path, m in model.named_modules()
            if next(m.children(), None) is None and not isinstance(m, _PASSTHROUGH)
        ]
        if self._is_classifier and leaves:
            path, last = leaves[-1]
            if isinstance(last, _SQUASH):
                kind = type(last).__name__
                raise HeadError(
                    f"the model ends in {kind} at {path or '<model>'!r}, but the {self.name} "
                    f"head's loss ({type(self.loss).__name__}) expects raw logits and applies "
                    f"the {'sigmoid' if isinstance(self.loss, nn.BCEWithLogitsLoss) else 'softmax'} "
                    f"itself; remove the final {kind} (use head.probs(output) for probabilities)"
                )
        linears = [(path, m) for path, m in model.named_modules() if isinstance(m, nn.Linear)]
        if linears:
            path, last = linears[-1]
            if last.out_features != self.out_features:
                hint = ""
                if self.name == "binary" and last.out_features == 2:
                    hint = "; for two logits use multiclass(2), or give the model 1 output"
                raise HeadError(
                    f"the model's last Linear {path or '<model>'!r} has out_features="
                    f"{last.out_features}, but the {self.name} head expects "
                    f"out_features={self.out_features}{hint}"
                )

    @abc.abstractmethod
    def check_targets(self, y: Any) -> None:
        """Raise :class:`HeadError` naming the first bad value and its row."""

    def _check_finite(self, y: Tensor) -> None:
        if y.is_floating_point():
            bad = first_true(~torch.isfinite(y))
            if bad is not None:
                raise HeadError(
                    f"{self.name} head: target has {show_value(y, bad)} at {where_text(bad)}; "
                    "targets must be finite"
                )

    def _check_integral(self, y: Tensor) -> None:
        self._check_finite(y)
        if y.is_floating_point():
            bad = first_true(y != torch.round(y))
            if bad is not None:
                raise HeadError(
                    f"float targets for a classifier: the {self.name} head got "
                    f"{show_value(y, bad)} at {where_text(bad)}; targets must be integer class labels "
                    "(use regression() for continuous targets)"
                )
        elif y.dtype == torch.bool:
            return
        elif y.is_complex():
            raise HeadError(f"{self.name} head: complex targets are not supported")

    def extra_repr(self) -> str:
        return f"name={self.name!r}, out_features={self.out_features}"
