"""Multi-layer perceptron built from named blocks."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from gradwise.errors import ConfigError
from gradwise.nn._activations import activation as _activation


def _positive_int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"MLP: {field} must be a positive int, got {value!r}")
    return value


class MLP(nn.Sequential):
    """A fully connected network: hidden blocks, then a linear output layer.

    Each hidden block is ``Linear -> [BatchNorm1d] -> activation -> [Dropout]``;
    the output layer is a plain ``Linear`` that returns raw scores (logits), so
    that the loss of an output head (see :mod:`gradwise.nn`) can apply
    sigmoid/softmax itself in a numerically stable way.

    The children are named ``block0`` … ``block{N-1}`` (each an ``nn.Sequential``
    with children ``linear``, ``norm``, ``act``, ``dropout`` where present) and
    ``head``; :attr:`blocks` lists them input to output, which is the order that
    layer-wise fine-tuning (freezing, discriminative learning rates) needs.

    With ``batchnorm=True`` the hidden ``Linear`` layers have no bias: the batch
    norm subtracts the batch mean right after, which cancels any bias, and its
    own shift ``beta`` takes that role.

    Shapes:
        input ``(N, in_features)`` -> output ``(N, out_features)``.

    Args:
        in_features: number of input features.
        hidden: width of each hidden block, input to output; ``[]`` gives a linear model.
        out_features: number of outputs (logits), e.g. ``head.out_features``.
        activation: a name from :data:`gradwise.nn.ACTIVATIONS`.
        dropout: drop probability after each hidden activation, in ``[0, 1)``.
        batchnorm: insert ``BatchNorm1d`` between each hidden ``Linear`` and its activation.
        **act_kw: options of the activation, e.g. ``alpha=0.1`` for ``leaky_relu``.

    Example:
        >>> import torch
        >>> net = MLP(4, [16, 8], 3, activation="gelu", dropout=0.1)
        >>> net(torch.randn(5, 4)).shape
        torch.Size([5, 3])
        >>> [name for name, _ in net.blocks]
        ['block0', 'block1', 'head']
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        **act_kw: Any,
    ) -> None:
        in_features = _positive_int("in_features", in_features)
        out_features = _positive_int("out_features", out_features)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise ConfigError(f"MLP: hidden must be a sequence of ints, got {hidden!r}")
        widths = [_positive_int(f"hidden[{i}]", h) for i, h in enumerate(hidden)]
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise ConfigError(f"MLP: dropout must be a number in [0, 1), got {dropout!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"MLP: dropout must be in [0, 1), got {dropout!r}")
        if not isinstance(batchnorm, bool):
            raise ConfigError(f"MLP: batchnorm must be True or False, got {batchnorm!r}")
        _activation(activation, **act_kw)  # fail on a bad name before building anything

        children: OrderedDict[str, nn.Module] = OrderedDict()
        width_in = in_features
        for i, width in enumerate(widths):
            block: OrderedDict[str, nn.Module] = OrderedDict()
            block["linear"] = nn.Linear(width_in, width, bias=not batchnorm)
            if batchnorm:
                block["norm"] = nn.BatchNorm1d(width)
            block["act"] = _activation(activation, **act_kw)
            if dropout > 0:
                block["dropout"] = nn.Dropout(dropout)
            children[f"block{i}"] = nn.Sequential(block)
            width_in = width
        children["head"] = nn.Linear(width_in, out_features)
        super().__init__(children)
        self.in_features = in_features
        self.out_features = out_features

    def __getitem__(self, idx: int | slice) -> nn.Module:
        # nn.Sequential builds a slice with `self.__class__(OrderedDict)`, which
        # does not match MLP's signature; a slice of an MLP is a plain Sequential
        # that keeps the child names (net[:-1] is the feature extractor).
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    @property
    def blocks(self) -> tuple[tuple[str, nn.Module], ...]:
        """``(name, module)`` of each hidden block and of ``head``, input to output."""
        return tuple(self.named_children())

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"
