"""Adafactor a group at a time, in torch's arithmetic and order (see ``gradwise.optim._group``).

The reference path runs ``ScaleByAdafactor`` and then the chain's tail,
which scales the direction by ``alpha / denom / lr`` and then by ``-lr``:
two passes over the parameter where torch makes one. Here each parameter
takes ``torch.optim.Adafactor``'s for-loop body, with the step's scalars
(``1 - beta2_t``, ``rho_t``) computed once for the group and the step
counters advanced with one op; the result equals torch's bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from gradwise.optim._group import GroupCache


def step(cache: GroupCache, grads: list[torch.Tensor], lr: float, wd: float, beta2_decay: float,
         eps: tuple[float | None, float], d: float) -> None:
    """One Adafactor step on the cached group (``cache.extra``: rows, columns, variances, decayed)."""
    rows, cols, variances, decayed = cache.extra
    cache.steps.add_(1)  # type: ignore[union-attr]
    t = cache.steps[0].item()  # type: ignore[index]
    one_minus_beta2 = t**beta2_decay
    rho = min(lr, 1 / (t**0.5))
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = torch.finfo(cache.dtype).eps
    shrink = 1 - lr * wd
    for p, g, row, col, var, dec in zip(cache.params, grads, rows, cols, variances, decayed):
        alpha = max(eps2, p.norm(2).item() / (p.numel() ** 0.5)) * rho
        if wd and dec:
            p.mul_(shrink)
        if g.dim() > 1:
            row.lerp_(torch.norm(g, dim=-1, keepdim=True).square_().div_(g.size(-1)), one_minus_beta2)
            col.lerp_(torch.norm(g, dim=-2, keepdim=True).square_().div_(g.size(-2)), one_minus_beta2)
            est = (row @ col).div_(row.mean(dim=-2, keepdim=True).clamp_(min=eps1)).clamp_(min=eps1 * eps1)
        else:
            var.lerp_(g * g, one_minus_beta2)
            est = var.clamp(min=eps1 * eps1)
        upd = est.rsqrt_().mul_(g)
        denom = max(1.0, upd.norm(2).item() / ((upd.numel() ** 0.5) * d))
        p.add_(upd, alpha=-alpha / denom)
