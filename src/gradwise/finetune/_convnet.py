"""A small convolutional network with named blocks, for transfer-learning examples."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor, nn

from gradwise.errors import ConfigError


class ConvNet(nn.Sequential):
    """Conv blocks, one hidden linear layer, and a linear head.

    Each block ``conv{i}`` is ``Conv2d(3×3, padding 1) -> [BatchNorm2d] -> ReLU
    -> MaxPool2d(2)``, halving the height and width; then ``flatten``, ``fc``
    (``Linear -> ReLU -> [Dropout]``) and ``head`` (``Linear``, raw logits).
    The named children are the layer groups of fine-tuning, input to output:
    ``conv0, conv1, ..., fc, head``.

    Shapes:
        input ``(N, C, H, W)`` or flat rows ``(N, C·H·W)`` (viewed as
        ``in_shape``) -> output ``(N, out_features)``.

    Args:
        in_shape: ``(C, H, W)`` of one image, e.g. ``(1, 8, 8)`` for digits.
        channels: output channels of each conv block.
        hidden: width of ``fc``.
        out_features: number of logits.
        batchnorm: batch norm after each convolution.
        dropout: drop probability after ``fc``.

    Example:
        >>> import torch
        >>> net = ConvNet((1, 8, 8), channels=(8, 16), hidden=32, out_features=5)
        >>> net(torch.zeros(2, 64)).shape
        torch.Size([2, 5])
        >>> [name for name, _ in net.named_children()]
        ['conv0', 'conv1', 'flatten', 'fc', 'head']
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (1, 8, 8),
        channels: Sequence[int] = (16, 32),
        hidden: int = 64,
        out_features: int = 10,
        batchnorm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        in_shape = tuple(in_shape)
        if len(in_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in in_shape):
            raise ConfigError(f"ConvNet: in_shape must be (C, H, W) of positive ints, got {in_shape!r}")
        for field, v in (("hidden", hidden), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"ConvNet: {field} must be a positive int, got {v!r}")
        if not channels or not all(isinstance(c, int) and c > 0 for c in channels):
            raise ConfigError(f"ConvNet: channels must be a non-empty list of positive ints, got {channels!r}")
        c, h, w = in_shape
        if min(h, w) < 2 ** len(channels):
            raise ConfigError(
                f"ConvNet: {len(channels)} blocks halve {h}x{w} images below one pixel; use fewer channels"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"ConvNet: dropout must be in [0, 1), got {dropout!r}")
        children: OrderedDict[str, nn.Module] = OrderedDict()
        for i, out_c in enumerate(channels):
            block: OrderedDict[str, nn.Module] = OrderedDict()
            block["conv"] = nn.Conv2d(c, out_c, 3, padding=1, bias=not batchnorm)
            if batchnorm:
                block["norm"] = nn.BatchNorm2d(out_c)
            block["act"] = nn.ReLU()
            block["pool"] = nn.MaxPool2d(2)
            children[f"conv{i}"] = nn.Sequential(block)
            c, h, w = out_c, h // 2, w // 2
        children["flatten"] = nn.Flatten()
        fc: OrderedDict[str, nn.Module] = OrderedDict(
            [("linear", nn.Linear(c * h * w, hidden)), ("act", nn.ReLU())]
        )
        if dropout > 0:
            fc["dropout"] = nn.Dropout(dropout)
        children["fc"] = nn.Sequential(fc)
        children["head"] = nn.Linear(hidden, out_features)
        super().__init__(children)
        self.in_shape = in_shape
        self.out_features = out_features

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.view(x.shape[0], *self.in_shape)  # (N, C·H·W) -> (N, C, H, W)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, out_features={self.out_features}"
