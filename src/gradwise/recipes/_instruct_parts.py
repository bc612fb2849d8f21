"""The instruct recipe's model wrapper, loss and per-rank loader.

:class:`CausalLMAdapter` turns a Hugging Face causal LM into a Trainer model
(batch dict in, logits out); :func:`lm_loss` is the Trainer's loss; under
torchrun, :func:`shard_loader` gives each rank its part of every global batch
and :class:`ShardedLMLoss` normalises by the global labelled-token count.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, RandomSampler

from gradwise.instruct import _varlen as varlen
from gradwise.instruct import causal_lm_loss
from gradwise.instruct._loss import global_causal_lm_loss
from gradwise.train._shard import Shard, ShardSampler


class CausalLMAdapter(nn.Module):
    """Wrap a Hugging Face causal LM so that ``forward(batch_dict)`` returns logits (B, T, V).

    The batch's tensors (``input_ids``, ``attention_mask``, ``position_ids``)
    are moved to the model's device; ``labels`` are left out, since the loss
    is computed outside the model.
    """

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm: Any = lm  # a transformers causal LM

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        device = self.lm.get_input_embeddings().weight.device
        # example boundaries stay on the host: varlen attention reads them in
        # every layer, and a device copy would cost a sync each time
        inputs = {
            k: v if k.startswith("cu_seq_lens") else v.to(device)
            for k, v in batch.items()
            if k != "labels"
        }
        if "cu_seq_lens_q" in inputs:  # packed rows, padding-free attention
            with varlen.packed():
                return self.lm(**inputs, use_cache=False).logits
        return self.lm(**inputs, use_cache=False).logits


def lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """The Trainer's loss: mean next-token cross-entropy over response tokens."""
    return causal_lm_loss(logits, labels.to(logits.device))


class ShardedLMLoss:
    """:func:`lm_loss` on ``world`` ranks: the mean over the global batch's response tokens.

    Training batches (gradients on) are normalised by the labelled-token
    count of all ranks together (see :func:`global_causal_lm_loss`);
    evaluation (no gradients) keeps each rank's own mean, as its batches
    need not line up across ranks.
    """

    def __init__(self, world: int) -> None:
        self.world = world

    def __call__(self, logits: Tensor, labels: Tensor) -> Tensor:
        labels = labels.to(logits.device)
        if torch.is_grad_enabled():
            return global_causal_lm_loss(logits, labels, self.world)
        return causal_lm_loss(logits, labels)


def shard_loader(loader: DataLoader, rank: int, world: int) -> DataLoader:
    """``loader`` with this rank's part of every (shuffled) epoch: ``perm[rank::world]``.

    The examples (or packed rows) are the same on every rank; a
    :class:`~gradwise.train._shard.ShardSampler` draws the epoch's
    permutation from the loader's own seeded generator as its
    ``RandomSampler`` did, pads it by wrapping around to a multiple of
    ``world`` and keeps every ``world``-th entry. With per-rank batch B the
    ranks' batch ``i`` together is batch ``i`` of one process with batch
    ``world·B``.
    """
    gen = loader.generator if loader.generator is not None else torch.Generator()
    shuffle = isinstance(loader.sampler, RandomSampler)
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=ShardSampler(len(loader.dataset), Shard(rank, world, True), shuffle, gen),  # type: ignore[arg-type]
        collate_fn=loader.collate_fn,
        generator=gen,
    )
