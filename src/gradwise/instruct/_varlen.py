"""Padding-free attention for packed rows: each example attends on its own.

A packed row holds several examples. The block-diagonal mask keeps them
apart but still computes (and masks away) every cross-example score: a row
of ``T`` tokens costs ``T**2`` scores per head however short its examples.
Attending example by example costs ``sum(n_i**2)`` instead, with the causal
kernel SDPA picks for an unmasked causal call (flash attention on CPU and
GPU). That is what flash-attention's varlen kernels do on a GPU; this module
does it on any device, for any Hugging Face model whose attention goes
through transformers' attention interface.

The example boundaries travel with the batch as ``cu_seq_lens_q`` /
``cu_seq_lens_k``: cumulative offsets into the flattened ``(B * T)`` tokens
(the names transformers' varlen kernels use), which models pass down to their
attention functions. :func:`enable` registers the attention implementation
``"gradwise_varlen"`` and switches a model to it. Without boundaries in the
call it is exactly transformers' SDPA (mask and all), so generation and
padded evaluation are unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from gradwise.errors import ConfigError

NAME = "gradwise_varlen"
_PACKED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "gradwise_varlen_packed", default=False
)


def cu_seqlens(lengths: list[list[int]], row_length: int) -> Tensor:
    """Cumulative offsets of the segments of each row over the flattened rows.

    ``lengths[b]`` are the example lengths of row ``b``; what is left of the
    row up to ``row_length`` (padding) is one more segment.

    >>> cu_seqlens([[2, 3], [4]], 6).tolist()
    [0, 2, 5, 6, 10, 12]
    """
    offsets = [0]
    for b, row in enumerate(lengths):
        start = b * row_length
        for n in row:
            offsets.append(offsets[-1] + n)
        if offsets[-1] < start + row_length:
            offsets.append(start + row_length)
    return torch.tensor(offsets, dtype=torch.int32)


@functools.cache
def _sdpa() -> tuple[Any, Any]:
    try:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
        from transformers.masking_utils import sdpa_mask
    except ImportError as err:  # pragma: no cover - transformers older than 4.53
        raise ConfigError(
            "packed_attention: varlen needs transformers >= 4.53 (attention and mask "
            "interfaces); use packed_attention: block_mask with this version"
        ) from err
    return sdpa_attention_forward, sdpa_mask


def varlen_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Tensor, None]:
    """transformers attention function: (B, H, T, D) in, (B, T, H, D) out."""
    sdpa, _ = _sdpa()
    cu = kwargs.pop("cu_seq_lens_q", None)
    kwargs.pop("cu_seq_lens_k", None)
    kwargs.pop("max_length_q", None)
    kwargs.pop("max_length_k", None)
    if cu is None:
        if _PACKED.get():
            raise ConfigError(
                f"{type(module).__name__} does not pass cu_seq_lens_q to its attention "
                "function, so packed examples cannot be kept apart without a mask; "
                "use packed_attention: block_mask for this model"
            )
        return sdpa(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    B, _, T, _ = query.shape
    if key.shape[2] != T:
        raise ConfigError(
            "packed_attention: varlen works without a KV cache only (use_cache=False)"
        )
    bounds = cu.tolist()  # kept on the host by the caller: no device sync per layer
    outs = []
    for s, e in zip(bounds[:-1], bounds[1:]):
        b, lo = divmod(s, T)
        hi = e - b * T
        out, _ = sdpa(
            module,
            query[b : b + 1, :, lo:hi],
            key[b : b + 1, :, lo:hi],
            value[b : b + 1, :, lo:hi],
            None,
            dropout=dropout,
            scaling=scaling,
            is_causal=True,
            **kwargs,
        )
        outs.append(out)  # (1, n, H, D)
    return torch.cat(outs, dim=1).view(B, T, *outs[0].shape[2:]), None


def _mask(*args: Any, **kwargs: Any) -> Tensor | None:
    if _PACKED.get():
        return None  # the boundaries travel as cu_seq_lens_q; no (B, 1, T, T) mask is built
    _, sdpa_mask = _sdpa()
    return sdpa_mask(*args, **kwargs)


def register() -> None:
    """Register ``"gradwise_varlen"`` with transformers' attention and mask interfaces."""
    _sdpa()
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, varlen_attention)
    AttentionMaskInterface.register(NAME, _mask)


def enable(model: nn.Module) -> str:
    """Switch a transformers model to varlen attention; return the implementation it had."""
    register()
    config = getattr(model, "config", None)
    if config is None or not hasattr(model, "set_attn_implementation"):
        raise ConfigError(
            f"packed_attention: varlen needs a transformers model, got {type(model).__name__}"
        )
    before = getattr(config, "_attn_implementation", None) or "sdpa"
    model.set_attn_implementation(NAME)
    return before


@contextlib.contextmanager
def packed() -> Iterator[None]:
    """Within: forward calls carry packed rows (no mask is built; kwargs must reach attention)."""
    token = _PACKED.set(True)
    try:
        yield
    finally:
        _PACKED.reset(token)


def supported(model: nn.Module) -> bool:
    """Does ``model`` keep packed examples apart under varlen attention?

    Runs two short examples packed in one row and each alone (no gradient,
    eval mode) and compares the logits. False when the model's attention
    does not receive the boundaries or the interfaces are missing; the model
    is left with the attention implementation it had.
    """
    try:
        before = enable(model)
    except (ConfigError, ValueError, ImportError):
        return False
    was_training = model.training
    device = model.get_input_embeddings().weight.device
    vocab = model.get_input_embeddings().num_embeddings
    a = torch.arange(1, 6, device=device) % vocab
    b = torch.arange(7, 10, device=device) % vocab
    row = torch.cat([a, b])[None]
    pos = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2]], device=device)
    cu = cu_seqlens([[5, 3]], 8).to(device)
    try:
        model.eval()
        with torch.no_grad():
            with packed():
                got = model(
                    input_ids=row,
                    position_ids=pos,
                    cu_seq_lens_q=cu,
                    cu_seq_lens_k=cu,
                    use_cache=False,
                ).logits[0]
            want = torch.cat([model(input_ids=x[None], use_cache=False).logits[0] for x in (a, b)])
        return bool(torch.allclose(got.float(), want.float(), atol=1e-4, rtol=1e-3))
    except (ConfigError, TypeError, ValueError, RuntimeError):
        return False
    finally:
        model.train(was_training)
        model.set_attn_implementation(before)
