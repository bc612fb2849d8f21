"""Batches for causal-LM training: padded, or packed with no cross-talk.

Padding a batch to its longest example wastes compute on pad tokens when
lengths are skewed. Packing puts several examples in one row of at most
``max_length`` tokens instead, and keeps them independent:

* position ids restart at 0 for every example, so each sees the positions
  it would see alone;
* attention is block-diagonal and causal: token ``q`` may attend to token
  ``k`` iff ``k <= q`` and both belong to the same example, i.e. the 4-D
  additive mask ``M[b, 0, q, k] = 0`` if ``seg[b, q] == seg[b, k] and k <= q``
  else ``min(dtype)``. This works with every attention implementation
  (eager and SDPA alike);
* the label of each example's first token is ``-100``: under the usual shift
  it would be predicted from the previous example's last token.

With ``attention="position_ids"`` no mask is built; the model must derive the
example boundaries from the position-id resets. transformers does so for its
mask-building models when ``attention_mask`` is ``None`` *and* no KV cache is
in use (call the model with ``use_cache=False``, as training does); its
flash-attention varlen path does the same without materializing any mask.

Examples are assigned to rows by best-fit decreasing (:func:`pack`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gradwise.errors import DataError
from gradwise.instruct._masking import IGNORE_INDEX, TokenizedExample
from gradwise.instruct._varlen import cu_seqlens

PackedAttention = Literal["block_mask", "position_ids", "varlen"]
PACKED_ATTENTION = ("block_mask", "position_ids", "varlen")


def pack(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """Assign items to rows of capacity ``max_length`` by best-fit decreasing.

    Longest items are placed first, each into the fullest row that still has
    room for it, which leaves little free space (BFD uses at most
    ``11/9·OPT + 6/9`` rows). Returns the item indices of each row.

    >>> pack([5, 3, 4, 2, 6], max_length=8)
    [[4, 3], [0, 1], [2]]
    """
    if max_length <= 0:
        raise DataError(f"max_length must be positive, got {max_length}")
    too_long = [i for i, n in enumerate(lengths) if n > max_length]
    if too_long:
        i = too_long[0]
        raise DataError(
            f"example {i} has {lengths[i]} tokens, more than max_length={max_length}; "
            "truncate before packing"
        )
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    # (free space, row index), sorted, so the best fit is one bisect away
    free: list[tuple[int, int]] = []
    for i in order:
        n = lengths[i]
        at = bisect.bisect_left(free, (n, -1))
        if at < len(free):
            space, r = free.pop(at)
            rows[r].append(i)
            bisect.insort(free, (space - n, r))
        else:
            rows.append([i])
            bisect.insort(free, (max_length - n, len(rows) - 1))
    return rows


def _pad(seqs: Sequence[Sequence[int]], value: int, length: int) -> Tensor:
    out = torch.full((len(seqs), length), value, dtype=torch.long)
    for b, s in enumerate(seqs):
        out[b, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def _target_length(longest: int, pad_to_multiple_of: int | None) -> int:
    if pad_to_multiple_of:
        return -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    return longest


def collate_padded(
    examples: Sequence[TokenizedExample], pad_id: int, pad_to_multiple_of: int | None = None
) -> dict[str, Tensor]:
    """Right-pad examples to the longest: ``input_ids``, ``attention_mask``, ``labels`` (B, T)."""
    length = _target_length(max(len(e) for e in examples), pad_to_multiple_of)
    return {
        "input_ids": _pad([e.input_ids for e in examples], pad_id, length),
        "attention_mask": _pad([[1] * len(e) for e in examples], 0, length),
        "labels": _pad([e.labels for e in examples], IGNORE_INDEX, length),
    }


def block_causal_mask(segments: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Additive 4-D mask (B, 1, T, T) from segment ids (B, T): causal within a segment.

    >>> block_causal_mask(torch.tensor([[0, 0, 1]]))[0, 0].eq(0).int().tolist()
    [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    """
    T = segments.shape[1]
    same = segments[:, :, None] == segments[:, None, :]  # (B, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=segments.device).tril()
    allowed = (same & causal)[:, None]  # (B, 1, T, T)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)


def collate_packed(
    rows: Sequence[Sequence[TokenizedExample]],
    pad_id: int,
    *,
    attention: PackedAttention = "block_mask",
    dtype: torch.dtype = torch.float32,
    pad_to_multiple_of: int | None = None,
) -> dict[str, Tensor]:
    """Packed rows: ``input_ids``, ``labels``, ``position_ids`` (B, T) and, for
    ``attention="block_mask"``, a block-diagonal ``attention_mask`` (B, 1, T, T).

    Padding at the end of a row forms one more segment of its own, so every
    query has at least one key and softmax never sees an all-masked row.
    """
    if attention not in PACKED_ATTENTION:
        raise DataError(
            f"unknown packed attention {attention!r}; allowed: {', '.join(PACKED_ATTENTION)}"
        )
    flat_ids, flat_labels, flat_pos, flat_seg = [], [], [], []
    for row in rows:
        ids, labels, pos, seg = [], [], [], []
        for s, ex in enumerate(row):
            ids += ex.input_ids
            labels += [IGNORE_INDEX] + ex.labels[1:]
            pos += range(len(ex))
            seg += [s] * len(ex)
        flat_ids.append(ids)
        flat_labels.append(labels)
        flat_pos.append(pos)
        flat_seg.append(seg)
    length = _target_length(max(len(x) for x in flat_ids), pad_to_multiple_of)
    position_ids = torch.zeros(len(rows), length, dtype=torch.long)
    segments = torch.full((len(rows), length), -1, dtype=torch.long)
    for b in range(len(rows)):
        n = len(flat_pos[b])
        position_ids[b, :n] = torch.as_tensor(flat_pos[b], dtype=torch.long)
        position_ids[b, n:] = torch.arange(length - n)
        segments[b, :n] = torch.as_tensor(flat_seg[b], dtype=torch.long)
    batch = {
        "input_ids": _pad(flat_ids, pad_id, length),
        "labels": _pad(flat_labels, IGNORE_INDEX, length),
        "position_ids": position_ids,
    }
    if attention == "block_mask":
        batch["attention_mask"] = block_causal_mask(segments, dtype)
    elif attention == "varlen":
        cu = cu_seqlens([[len(ex) for ex in row] for row in rows], length)
        batch["cu_seq_lens_q"] = cu
        batch["cu_seq_lens_k"] = cu
    return batch


class _Items(Dataset):
    def __init__(self, items: Sequence) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


def make_loader(
    examples: Sequence[TokenizedExample],
    *,
    batch_size: int,
    pad_id: int,
    packing: bool = False,
    max_length: int | None = None,
    attention: PackedAttention = "block_mask",
    dtype: torch.dtype = torch.float32,
    shuffle: bool = True,
    seed: int = 0,
    pad_to_multiple_of: int | None = None,
    pairs: bool = False,
) -> DataLoader:
    """A DataLoader of batch dicts (see :func:`collate_padded`, :func:`collate_packed`).

    With ``packing`` the examples are packed once into rows of ``max_length``
    tokens and ``batch_size`` counts rows; otherwise it counts examples.
    ``pairs=True`` yields ``(batch, batch["labels"])`` instead, the
    ``(inputs, target)`` shape of :class:`gradwise.train.Trainer`.
    """
    if not examples:
        raise DataError("no examples to train on")
    generator = torch.Generator().manual_seed(seed)
    if packing:
        if max_length is None:
            raise DataError("packing needs max_length (the length of a packed row)")
        rows = [[examples[i] for i in r] for r in pack([len(e) for e in examples], max_length)]

        def collate(batch: list[list[TokenizedExample]]) -> dict[str, Tensor] | tuple[dict[str, Tensor], Tensor]:
            out = collate_packed(
                batch,
                pad_id,
                attention=attention,
                dtype=dtype,
                pad_to_multiple_of=pad_to_multiple_of,
            )
            return (out, out["labels"]) if pairs else out

        return DataLoader(
            _Items(rows),
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=collate,
            generator=generator,
        )

    def collate_pad(batch: list[TokenizedExample]) -> dict[str, Tensor] | tuple[dict[str, Tensor], Tensor]:
        out = collate_padded(batch, pad_id, pad_to_multiple_of)
        return (out, out["labels"]) if pairs else out

    return DataLoader(
        _Items(list(examples)),
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate_pad,
        generator=generator,
    )
