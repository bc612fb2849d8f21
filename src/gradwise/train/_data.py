"""Turn what a user passes as data into batches of ``(inputs, target)`` on the device.

Accepted: a ``DataLoader``, a ``Dataset``, or a tuple ``(X, y)`` (or
``(X1, X2, ..., y)``) of tensors / NumPy arrays. Tuples and ``TensorDataset``
take a fast path: the tensors move to the device once and each batch is an
``index_select`` of them, where a ``DataLoader`` over the same data indexes
every example in Python and stacks them again (``default_collate``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from gradwise.errors import DataError
from gradwise.train._shard import Shard, ShardSampler

Batch = tuple[tuple[Tensor, ...], Any]

HEAD_API = ("name", "check_model", "check_targets", "prepare_target", "predict", "probs")


def is_head(obj: Any) -> bool:
    """True when ``obj`` has the gradwise head interface (duck typing)."""
    return all(hasattr(obj, a) for a in HEAD_API) and hasattr(obj, "default_metrics")


def as_tensor(x: Any, what: str) -> Tensor:
    """A tensor from a tensor or array; floating NumPy data becomes torch's default dtype."""
    if isinstance(x, Tensor):
        return x
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise DataError(f"{what}: cannot convert {type(x).__name__} to an array ({exc})") from exc
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise DataError(f"{what}: values must be numeric, got dtype {arr.dtype}")
    t = torch.from_numpy(np.ascontiguousarray(arr))
    # float64 arrays (NumPy's default) would not match float32 model weights.
    return t.to(torch.get_default_dtype()) if t.is_floating_point() else t


def _move(x: Any, device: torch.device) -> Any:
    if isinstance(x, Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, (tuple, list)):
        return type(x)(_move(v, device) for v in x)
    return x


def split_batch(batch: Any, what: str, *, with_target: bool = True) -> Batch:
    """``(x1, ..., xk, y)`` -> ``((x1, ..., xk), y)``; a lone tensor is inputs only."""
    if isinstance(batch, (tuple, list)):
        if with_target and len(batch) >= 2:
            return tuple(batch[:-1]), batch[-1]
        if not with_target:
            return (tuple(batch[:-1]) if len(batch) >= 2 else tuple(batch)), None
    elif isinstance(batch, Tensor) and not with_target:
        return (batch,), None
    raise DataError(
        f"{what}: each batch must be a tuple (inputs..., target), got "
        f"{type(batch).__name__}{f' of length {len(batch)}' if isinstance(batch, (tuple, list)) else ''}"
    )


class TensorBatches:
    """Batches sliced from tensors already on the device (the fast path).

    It makes the same random draws from ``generator`` as ``DataLoader(
    TensorDataset(...), shuffle=shuffle, generator=generator)`` (one int64 for
    the worker seed, then the permutations of ``RandomSampler``), so both paths
    see the examples in the same order, epoch after epoch.

    With a ``shard`` (several processes), each epoch keeps only this rank's
    part of the permutation (see :class:`~gradwise.train._shard.Shard`).
    """

    def __init__(
        self,
        inputs: tuple[Tensor, ...],
        target: Tensor | None,
        batch_size: int,
        shuffle: bool,
        shard: Shard | None = None,
    ) -> None:
        self.inputs, self.target = inputs, target
        self.n = inputs[0].shape[0]
        self.batch_size, self.shuffle, self.shard = batch_size, shuffle, shard

    def __len__(self) -> int:
        n = self.n if self.shard is None else self.shard.size(self.n)
        return math.ceil(n / self.batch_size)

    def epoch(self, generator: torch.Generator | None) -> Iterator[Batch]:
        """The batches of one epoch; the random draws happen now, not at the first batch."""
        if generator is not None:
            torch.empty((), dtype=torch.int64).random_(generator=generator)
        perm = None
        if self.shuffle:
            perm = torch.randperm(self.n, generator=generator)
            # RandomSampler draws one more permutation for its (empty) remainder
            # when the epoch is exhausted; drawing it too keeps later epochs equal.
            torch.randperm(self.n, generator=generator)
        if self.shard is not None:
            perm = self.shard.indices(self.n, perm)
        if perm is not None:
            perm = perm.to(self.inputs[0].device)
        return self._slices(perm)

    def _slices(self, perm: Tensor | None) -> Iterator[Batch]:
        bs, target = self.batch_size, self.target
        for i in range(0, self.n if perm is None else len(perm), bs):
            if perm is None:
                yield (
                    tuple(x[i : i + bs] for x in self.inputs),
                    (None if target is None else target[i : i + bs]),
                )
            else:
                idx = perm[i : i + bs]
                yield (
                    tuple(x.index_select(0, idx) for x in self.inputs),
                    (None if target is None else target.index_select(0, idx)),
                )


class LoaderBatches:
    """Batches from a ``DataLoader``, split into inputs and target and moved to the device."""

    def __init__(
        self,
        loader: DataLoader,
        device: torch.device,
        prepare: Callable[[Any], Any] | None,
        what: str,
        with_target: bool = True,
    ) -> None:
        self.loader, self.device, self.prepare = loader, device, prepare
        self.what, self.with_target = what, with_target
        self._move = device.type != "cpu"

    def __len__(self) -> int:
        return len(self.loader)  # TypeError for an iterable without a length

    def first_target(self) -> Any:
        """The target of the first batch (for the head's label checks).

        Drawing it must not change the run: the loader's shuffle draws from its
        generator (or the global one), so both are put back afterwards.
        """
        gen = self.loader.generator
        saved = None if gen is None else gen.get_state()
        rng = torch.get_rng_state()
        try:
            for batch in self.loader:
                return split_batch(batch, self.what)[1]
        finally:
            torch.set_rng_state(rng)
            if gen is not None:
                gen.set_state(saved)
        raise DataError(f"{self.what}: the DataLoader yields no batches")

    def epoch(self, generator: torch.Generator | None) -> Iterator[Batch]:
        """The batches of one epoch; the loader's iterator (and its seed draw) is made now."""
        return self._batches(iter(self.loader))

    def _batches(self, it: Iterator[Any]) -> Iterator[Batch]:
        for batch in it:
            inputs, target = split_batch(batch, self.what, with_target=self.with_target)
            if self._move:
                inputs, target = _move(inputs, self.device), _move(target, self.device)
            if self.prepare is not None and target is not None:
                target = self.prepare(target)
            yield inputs, target


def make_batches(
    data: Any,
    *,
    what: str,
    batch_size: int,
    shuffle: bool,
    device: torch.device,
    generator: torch.Generator | None,
    prepare: Callable[[Any], Any] | None = None,
    with_target: bool = True,
    shard: Shard | None = None,
) -> tuple[TensorBatches | LoaderBatches, Any]:
    """Batches for ``data`` and its full raw target (None when only a loader has it).

    Args:
        what: ``"train"``, ``"val"``... used in error messages.
        generator: the shuffle generator for loaders gradwise builds.
        prepare: the head's ``prepare_target``, applied once (fast path) or per batch.
        with_target: False for ``predict``: a lone tensor or ``(X,)`` is accepted.
        shard: this process's part of the data when training on several
            processes (tuples and Datasets; a DataLoader is used as given).
    """
    if isinstance(data, DataLoader):
        return LoaderBatches(data, device, prepare, what, with_target), None
    if isinstance(data, TensorDataset):
        data = tuple(data.tensors)
    if isinstance(data, Dataset) and shard is not None and not isinstance(data, IterableDataset):
        gen = generator if generator is not None else torch.Generator()
        loader = DataLoader(
            data,
            batch_size=batch_size,
            sampler=ShardSampler(len(data), shard, shuffle, gen),
            generator=gen,
        )
        return LoaderBatches(loader, device, prepare, what, with_target), None
    if isinstance(data, Dataset):
        loader = DataLoader(
            data,
            batch_size=batch_size,
            shuffle=shuffle and not isinstance(data, IterableDataset),
            # A private generator even without shuffling: a loader's iterator
            # draws a worker seed, which would otherwise come from the global RNG.
            generator=generator if generator is not None else torch.Generator(),
        )
        return LoaderBatches(loader, device, prepare, what, with_target), None
    if not with_target and not isinstance(data, (tuple, list)):
        data = (data,)
    if isinstance(data, (tuple, list)) and (len(data) >= 2 or not with_target) and data:
        tensors = [as_tensor(x, f"{what} data item {i}") for i, x in enumerate(data)]
        _check_lengths(tensors, what)
        if with_target:
            raw = tensors[-1]
            target = raw.to(device)
            target = prepare(target) if prepare is not None else target
            inputs = tuple(x.to(device) for x in tensors[:-1])
        else:
            raw, target = None, None
            inputs = tuple(x.to(device) for x in (tensors[:-1] if len(tensors) >= 2 else tensors))
        return TensorBatches(inputs, target, batch_size, shuffle, shard), raw
    raise DataError(
        f"{what} data must be a DataLoader, a torch Dataset or a tuple (X, y) of tensors or "
        f"arrays; got {_describe(data)}"
    )


def _check_lengths(tensors: Sequence[Tensor], what: str) -> None:
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise DataError(f"{what} data item {i} is a scalar; it needs one row per example")
    lengths = [t.shape[0] for t in tensors]
    if len(set(lengths)) > 1:
        raise DataError(
            f"{what} data items have different numbers of rows: {lengths}; "
            "every item needs one row per example"
        )
    if lengths[0] == 0:
        raise DataError(f"{what} data is empty (0 rows)")


def _describe(data: Any) -> str:
    if isinstance(data, (tuple, list)):
        return f"a {type(data).__name__} of length {len(data)}"
    return type(data).__name__
