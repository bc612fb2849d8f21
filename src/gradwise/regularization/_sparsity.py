"""Count exact zeros, the visible result of an L1 proximal step."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import Tensor, nn

from gradwise.regularization._masks import Mask, named_tensors, selects


@dataclass(frozen=True)
class SparsityReport:
    """Fractions of exact zeros.

    Attributes:
        layers: module path -> fraction of zeros among that module's own
            parameters (``"0"`` for ``model[0]``, ``""`` for top-level ones).
        params: parameter name -> fraction of zeros.
        total: fraction of zeros over all counted parameters.
        zeros: number of zero entries counted.
        numel: number of entries counted.
    """

    layers: dict[str, float]
    params: dict[str, float]
    total: float
    zeros: int
    numel: int

    def __str__(self) -> str:
        width = max([len(k) for k in self.layers] + [5])
        rows = [f"{'layer':<{width}}  zeros"]
        rows += [f"{k or '(top)':<{width}}  {v:6.1%}" for k, v in self.layers.items()]
        rows.append(f"{'total':<{width}}  {self.total:6.1%}  ({self.zeros}/{self.numel})")
        return "\n".join(rows)


def sparsity(
    model: nn.Module | Iterable[tuple[str, Tensor]] | Iterable[Tensor], mask: Mask = None
) -> SparsityReport:
    """Report the fraction of exact zeros per layer, per parameter and in total.

    ``mask`` restricts the count (``"auto"``: only the weights a default
    penalty acts on). A layer is the module that owns a parameter.

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(2, 2)
        >>> with torch.no_grad():
        ...     lin.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
        ...     lin.bias.fill_(1.0)
        Parameter containing:...
        >>> sparsity(lin).params["weight"], sparsity(lin).total
        (0.75, 0.5)
    """
    counts: dict[str, list[int]] = {}
    params: dict[str, float] = {}
    zeros = numel = 0
    for i, (name, p) in enumerate(named_tensors(model)):
        if not selects(mask, name, p):
            continue
        name = name if name is not None else str(i)
        z, n = int((p.detach() == 0).sum()), p.numel()
        params[name] = z / n if n else 0.0
        layer = name.rpartition(".")[0]
        c = counts.setdefault(layer, [0, 0])
        c[0] += z
        c[1] += n
        zeros += z
        numel += n
    layers = {k: (z / n if n else 0.0) for k, (z, n) in counts.items()}
    return SparsityReport(layers, params, zeros / numel if numel else 0.0, zeros, numel)
