"""Packed attention for your own training loop: keep packed examples apart.

:func:`packed_attention` readies a transformers causal LM for packed rows
(several examples in one row, from :func:`~gradwise.instruct.collate_packed`)
and puts the model's own attention implementation back afterwards. It is what
the ``sft`` recipe uses; a hand-written loop needs nothing private.
"""

from __future__ import annotations

from types import TracebackType
from typing import Literal

from torch import nn

from gradwise.errors import ConfigError, unknown
from gradwise.instruct import _varlen as varlen

PackedMode = Literal["auto", "varlen", "block_mask", "position_ids"]
MODES = ("auto", "varlen", "block_mask", "position_ids")


class PackedAttention:
    """Handle of :func:`packed_attention`: the chosen ``mode`` and ``restore()``.

    Use it as a context manager or call :meth:`restore` yourself; restoring
    twice is harmless.
    """

    def __init__(self, model: nn.Module, mode: str, before: str | None) -> None:
        self.model = model
        self.mode = mode  # "varlen", "block_mask" or "position_ids": pass it to collate_packed
        self.before = before  # the model's own attention implementation (None: untouched)

    def restore(self) -> None:
        """Put the model's own attention implementation back."""
        if self.before is not None:
            self.model.set_attn_implementation(self.before)
            self.before = None

    def __enter__(self) -> PackedAttention:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()

    def __repr__(self) -> str:
        return f"PackedAttention(mode={self.mode!r})"


def packed_attention(model: nn.Module, mode: PackedMode = "auto") -> PackedAttention:
    """Ready ``model`` for packed rows whose examples must not attend to each other.

    Modes (the batch comes from ``collate_packed(rows, attention=handle.mode)``
    or ``make_loader(..., attention=handle.mode)``):

    * ``"varlen"``: the model is switched to gradwise's padding-free attention
      (SDPA run example by example from the ``cu_seq_lens_q`` boundaries the
      batch carries; ``Σ nᵢ²`` scores per row instead of ``T²``, no mask). A
      forward call without boundaries (generation, padded evaluation) is
      transformers' SDPA unchanged. Raises :class:`~gradwise.errors.ConfigError`
      when the model does not pass the boundaries down to its attention.
    * ``"block_mask"``: the model is left as it is; the batch carries a 4-D
      block-diagonal causal mask that every attention implementation accepts.
    * ``"position_ids"``: the model is left as it is; transformers rebuilds the
      block mask from position-id resets (forward with ``use_cache=False``).
    * ``"auto"``: ``"varlen"`` when the model keeps two packed examples apart
      under it (checked once by running them packed and alone), else
      ``"block_mask"``.

    Returns a :class:`PackedAttention` handle: use it as a context manager, or
    keep it and call ``.restore()``; either way the model gets back the
    attention implementation it had (``model.config._attn_implementation``).

    Example::

        with packed_attention(model) as pa:
            for rows in loader_rows:
                batch = collate_packed(rows, pad_id=0, attention=pa.mode)
                labels = batch.pop("labels")
                loss = causal_lm_loss(model(**batch, use_cache=False).logits, labels)
                ...
    """
    if mode not in MODES:
        raise unknown("packed_attention mode", mode, MODES)
    if mode in ("block_mask", "position_ids"):
        return PackedAttention(model, mode, None)
    ok = varlen.supported(model)
    if not ok:
        if mode == "varlen":
            raise ConfigError(
                f"packed_attention: varlen: {type(model).__name__} does not pass "
                "cu_seq_lens_q to its attention; use block_mask or auto"
            )
        return PackedAttention(model, "block_mask", None)
    return PackedAttention(model, "varlen", varlen.enable(model))

