"""Passes over data in eval mode without gradients: the mean loss and metrics, and predictions.

``Trainer.evaluate`` and the validation at each epoch's end use
:func:`run_eval`; ``Trainer.predict`` uses :func:`run_predict`. Both put the
model back in the mode it was in, also when a batch fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gradwise.train._data import LoaderBatches, TensorBatches
from gradwise.train.metrics import Metric


def run_eval(
    model: torch.nn.Module,
    loss_fn: Callable[[Any, Any], Tensor],
    batches: TensorBatches | LoaderBatches,
    metrics: list[Metric],
    amp: Callable[[], Any],
    dist: Any = None,
) -> dict[str, float]:
    """Mean loss (weighted by batch size) and metrics over ``batches`` in eval mode.

    With ``dist`` (DDP), ``batches`` is this rank's shard and the result
    covers the shards of every rank.
    """
    was_training = model.training
    model.eval()
    for m in metrics:
        m.reset()
    total: Tensor | None = None
    count = 0
    try:
        with torch.no_grad():
            for inputs, target in batches.epoch(None):
                with amp():
                    out = model(*inputs)
                    loss = loss_fn(out, target)
                n = len(target)
                part = loss.detach().double() * n
                total = part if total is None else total + part
                count += n
                for m in metrics:
                    m.update(out, target)
    finally:
        model.train(was_training)
    if dist is not None:
        loss, values = dist.totals(total, count, metrics)
        return {"loss": loss, **values}
    result = {"loss": float(total) / count if total is not None and count else float("nan")}
    result.update({m.name: m.compute() for m in metrics})
    return result


def run_predict(
    model: torch.nn.Module,
    batches: TensorBatches | LoaderBatches,
    amp: Callable[[], Any],
    head: Any = None,
    kind: str = "output",
) -> Tensor:
    """Model outputs over ``batches`` in eval mode, concatenated on the CPU (float32 for bf16).

    ``kind``: ``"output"`` (raw), ``"probs"`` (``head.probs``) or ``"labels"``
    (``head.predict``); the caller checks that a head is given for the last two.
    """
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.no_grad():
            for inputs, _ in batches.epoch(None):
                with amp():
                    out = model(*inputs)
                if kind == "probs":
                    out = head.probs(out)
                elif kind == "labels":
                    out = head.predict(out)
                if out.dtype in (torch.bfloat16, torch.float16):
                    out = out.float()
                outs.append(out.cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs)
