"""Masks: which parameters a penalty, a weight decay or a transform acts on.

A mask is one of

* ``"all"`` (or ``None``): every parameter;
* ``"auto"``: tensors with ``ndim >= 2`` only, which leaves out biases and the
  weights of normalization layers (LayerNorm, BatchNorm, RMSNorm: all 1-D).
  Decaying those rarely helps and can hurt: a norm weight is a scale whose
  natural value is 1, and a bias has no interaction with the input whose size
  a penalty should control (nanoGPT, BERT and most recipes exclude them);
* a name pattern or a list of them (``fnmatch`` syntax, ``"*.weight"``): the
  parameters whose name matches any pattern. Names need named parameters,
  ``model.named_parameters()``;
* a callable ``mask(name, param) -> bool``; ``name`` is ``None`` when the
  parameters were given without names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence

from torch import Tensor, nn

from gradwise.errors import ConfigError

Mask = str | Sequence[str] | Callable[[str | None, Tensor], bool] | None
"""What a mask may be: ``None``/``"all"``, ``"auto"``, patterns or a callable."""

NamedParams = list[tuple[str | None, Tensor]]


def check_mask(mask: Mask, field: str = "mask") -> Mask:
    """Return ``mask`` unchanged if it has an allowed form, else raise ``ConfigError``.

    >>> check_mask("auto")
    'auto'
    """
    if mask is None or callable(mask) or isinstance(mask, str):
        return mask
    if isinstance(mask, Sequence) and all(isinstance(m, str) for m in mask):
        return tuple(mask)
    raise ConfigError(
        f"{field} must be 'all', 'auto', a name pattern, a list of name patterns or a "
        f"callable (name, param) -> bool; got {mask!r}"
    )


def selects(mask: Mask, name: str | None, param: Tensor) -> bool:
    """Whether ``mask`` selects the parameter ``param`` called ``name``.

    >>> import torch
    >>> selects("auto", "fc.bias", torch.zeros(3))
    False
    >>> selects(["fc.*"], "fc.bias", torch.zeros(3))
    True
    """
    if mask is None or mask == "all":
        return True
    if mask == "auto":
        return param.ndim >= 2
    if callable(mask):
        return bool(mask(name, param))
    patterns = (mask,) if isinstance(mask, str) else tuple(mask)
    if name is None:
        raise ConfigError(
            f"mask {list(patterns)!r} matches parameter names, but the parameters have no "
            "names: pass model.named_parameters() instead of model.parameters(), or use "
            "mask='auto', 'all' or a callable"
        )
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def named_tensors(params: nn.Module | Iterable[Tensor] | Iterable[tuple[str, Tensor]]) -> NamedParams:
    """Normalize a module, named parameters or plain tensors to ``[(name | None, tensor)]``.

    >>> [n for n, _ in named_tensors(nn.Linear(2, 1))]
    ['weight', 'bias']
    """
    if isinstance(params, nn.Module):
        return list(params.named_parameters())
    if isinstance(params, Tensor):
        return [(None, params)]
    out: NamedParams = []
    for item in params:
        if isinstance(item, Tensor):
            out.append((None, item))
        elif (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], Tensor)
        ):
            out.append(item)
        else:
            raise TypeError(
                "expected a module, tensors or (name, tensor) pairs such as "
                f"model.named_parameters(); got an item of type {type(item).__name__}"
            )
    return out
