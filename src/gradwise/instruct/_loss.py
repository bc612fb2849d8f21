"""The next-token loss of a causal LM, over labelled positions only.

Position ``t`` predicts token ``t + 1``, so logits ``(B, T, V)`` are compared
with labels shifted left by one:

    L = -(1/N) · Σ_{b,t : y[b,t+1] ≠ -100} log softmax(z[b,t])[y[b,t+1]]

with ``N`` the number of labelled targets. This is what Hugging Face models
compute when given ``labels``; it is written out here so that per-token
values are available (packing equivalence, token accuracy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gradwise.instruct._masking import IGNORE_INDEX


def token_losses(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-target losses (B, T-1); ``0`` where the target is ``-100``.

    >>> z = torch.zeros(1, 3, 4)  # uniform over 4 tokens
    >>> [[round(v, 4) for v in row] for row in token_losses(z, torch.tensor([[-100, 2, -100]])).tolist()]
    [[1.3863, 0.0]]
    """
    logits = logits[:, :-1].float()  # (B, T-1, V)
    targets = labels[:, 1:]  # (B, T-1)
    flat = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    return flat.view(targets.shape)


def causal_lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean next-token cross-entropy over labelled targets (a scalar)."""
    targets = labels[:, 1:]
    n = (targets != IGNORE_INDEX).sum().clamp(min=1)
    return token_losses(logits, labels).sum() / n


def global_causal_lm_loss(logits: Tensor, labels: Tensor, world: int) -> Tensor:
    """This rank's share of the global batch's mean loss under data parallelism.

    With rank ``r`` holding ``S_r`` (its summed token losses) and ``n_r``
    labelled targets, the global batch's loss is ``L = Σ_r S_r / N`` with
    ``N = Σ_r n_r`` (all-reduced here, one collective per call). Each rank
    returns ``W · S_r / N``: DDP and FSDP average gradients over the ``W``
    ranks, which gives ``∇L``, and the mean of the ranks' values is ``L``.
    The mean of per-rank means would weigh a rank's tokens by ``1 / n_r``.
    Every rank must call it equally often; ``world == 1`` is
    :func:`causal_lm_loss`.
    """
    if world == 1:
        return causal_lm_loss(logits, labels)
    import torch.distributed as dist

    n = (labels[:, 1:] != IGNORE_INDEX).sum().to(logits.device)
    dist.all_reduce(n)
    return token_losses(logits, labels).sum() * world / n.clamp(min=1)


@torch.no_grad()
def token_accuracy(logits: Tensor, labels: Tensor) -> tuple[int, int]:
    """``(correct, total)`` of greedy next-token predictions on labelled targets."""
    pred = logits[:, :-1].argmax(-1)
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    return int((pred[keep] == targets[keep]).sum()), int(keep.sum())
