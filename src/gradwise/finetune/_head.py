"""Find, replace and temporarily swap a model's output layer (its head)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from gradwise.errors import ConfigError


def find_head(model: nn.Module) -> str:
    """Dotted path of the model's output layer: its last ``nn.Linear`` in registration order.

    For gradwise's ``MLP`` and ``ConvNet`` that is ``"head"``; for a Hugging
    Face classifier ``"classifier"`` or ``"score"``.

    >>> from gradwise.nn import MLP
    >>> find_head(MLP(4, [8], 2))
    'head'
    """
    linears = [path for path, m in model.named_modules() if isinstance(m, nn.Linear) and path]
    if not linears:
        raise ConfigError(
            f"the model ({type(model).__name__}) has no nn.Linear output layer to replace; "
            "give the head's module path"
        )
    return linears[-1]


def get_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted ``path`` (a ConfigError naming it when absent)."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise ConfigError(f"the model has no module {path!r}") from None


def set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    """Put ``module`` at dotted ``path``, replacing what was there."""
    parent_path, _, name = path.rpartition(".")
    parent = get_module(model, parent_path) if parent_path else model
    setattr(parent, name, module)


def replace_head(model: nn.Module, out_features: int, path: str | None = None) -> nn.Module:
    """Replace the output ``nn.Linear`` by a fresh one with ``out_features`` outputs.

    The new layer keeps the old one's ``in_features``, bias, device and dtype,
    and is initialised by torch's default (seed the global RNG first for a
    reproducible head). Returns the old layer, so that the source task can
    still be scored through it (see :func:`swapped`).

    >>> from gradwise.nn import MLP
    >>> net = MLP(4, [8], 10)
    >>> old = replace_head(net, 3)
    >>> old.out_features, net.head.out_features
    (10, 3)
    """
    if isinstance(out_features, bool) or not isinstance(out_features, int) or out_features < 1:
        raise ConfigError(f"replace_head: out_features must be a positive int, got {out_features!r}")
    path = path or find_head(model)
    old = get_module(model, path)
    if not isinstance(old, nn.Linear):
        raise ConfigError(f"replace_head: {path!r} is a {type(old).__name__}, not an nn.Linear")
    new = nn.Linear(old.in_features, out_features, bias=old.bias is not None)
    new.to(device=old.weight.device, dtype=old.weight.dtype)
    set_module(model, path, new)
    return old


@contextlib.contextmanager
def swapped(model: nn.Module, path: str, module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` at ``path`` for the ``with`` block, then put the original back.

    Scores the source task through its own head on a fine-tuned body:

    >>> import torch
    >>> from gradwise.nn import MLP
    >>> net = MLP(4, [8], 10)
    >>> old = replace_head(net, 3)
    >>> with swapped(net, "head", old):
    ...     net(torch.zeros(1, 4)).shape
    torch.Size([1, 10])
    >>> net(torch.zeros(1, 4)).shape
    torch.Size([1, 3])
    """
    current = get_module(model, path)
    param = next(current.parameters(), None)
    if param is not None:
        module.to(device=param.device)
    set_module(model, path, module)
    try:
        yield model
    finally:
        set_module(model, path, current)
