"""One process's share of the data under DDP: ``perm[rank::world]``, as ``DistributedSampler``.

The shared epoch permutation ``perm`` is padded by wrapping around to a
multiple of the ``world`` processes, and rank ``r`` takes ``perm[r::world]``
(see :mod:`gradwise.train._distributed`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Sampler


class Shard(NamedTuple):
    """Which part of the data one process sees: ``perm[rank::world]``.

    ``pad``: wrap around so every rank gets ``ceil(N / world)`` examples (and
    so the same number of batches, which DDP's collective steps need), as
    ``DistributedSampler`` does; off for evaluation, where every example
    counts exactly once.
    """

    rank: int
    world: int
    pad: bool

    def size(self, n: int) -> int:
        """Examples this rank gets out of ``n``."""
        return math.ceil(n / self.world) if self.pad else len(range(self.rank, n, self.world))

    def indices(self, n: int, perm: Tensor | None) -> Tensor:
        """This rank's example indices for an epoch with permutation ``perm`` (None: in order).

        Example:
            >>> Shard(1, 2, pad=True).indices(5, None).tolist()
            [1, 3, 0]
        """
        order = torch.arange(n) if perm is None else perm
        if self.pad:
            total = math.ceil(n / self.world) * self.world
            if total > n:
                order = order.repeat(math.ceil(total / n))[:total]
        return order[self.rank :: self.world]


class ShardSampler(Sampler[int]):
    """This rank's indices of a Dataset, shuffled from the trainer's generator.

    It draws from ``generator`` as ``RandomSampler`` does (two permutations
    per epoch), so a Dataset and a tuple of tensors give the same batches.
    """

    def __init__(self, n: int, shard: Shard, shuffle: bool, generator: torch.Generator) -> None:
        self.n, self.shard, self.shuffle, self.generator = n, shard, shuffle, generator

    def __len__(self) -> int:
        return self.shard.size(self.n)

    def __iter__(self) -> Iterator[int]:
        perm = None
        if self.shuffle:
            perm = torch.randperm(self.n, generator=self.generator)
            torch.randperm(self.n, generator=self.generator)
        return iter(self.shard.indices(self.n, perm).tolist())
