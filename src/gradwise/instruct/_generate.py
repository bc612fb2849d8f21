"""Text generation from a causal LM through transformers' own ``generate``.

Decoding is the model's ``generate`` with a
:class:`transformers.GenerationConfig` built from the arguments; nothing of
the model is patched. Each step picks the next token from the logits ``z`` of
the last position:

* greedy: ``argmax z``;
* sampling: ``z / temperature``, then keep the ``top_k`` largest logits,
  then keep the smallest set of tokens whose probability mass reaches
  ``top_p`` (nucleus sampling, Holtzman et al. 2020), renormalize, draw.

:func:`top_k_filter` and :func:`top_p_filter` state the two filters (they
equal transformers' warpers). A sequence stops at its first stop token (the
tokenizer's EOS and, for chat templates, the end-of-turn token), given to
``generate`` as ``eos_token_id``, or after ``max_new_tokens``. Prompts of a
batch are left-padded with an attention mask (the model's ``generate`` derives
position ids from it), so a prompt generates the same tokens alone and in a
batch. Settings that are not arguments here (a repetition penalty, say) come
from the model's own ``generation_config``, as with ``model.generate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from gradwise.errors import ConfigError


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Set all but the ``k`` largest logits of each row to ``-inf`` (``k <= 0``: no-op).

    >>> top_k_filter(torch.tensor([[1.0, 3.0, 2.0]]), 2).tolist()
    [[-inf, 3.0, 2.0]]
    """
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep the smallest set of most likely tokens whose probability sum reaches ``p``.

    A token is dropped when the tokens more likely than it already hold at
    least ``p`` of the mass; the most likely token is always kept.

    >>> top_p_filter(torch.log(torch.tensor([[0.5, 0.3, 0.2]])), 0.7).isinf().tolist()
    [[False, False, True]]
    """
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = sorted_logits.softmax(-1)
    mass_before = probs.cumsum(-1) - probs
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def _check(temperature: float, top_k: int, top_p: float, max_new_tokens: int) -> None:
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must lie in (0, 1], got {top_p}")
    if top_k < 0:
        raise ConfigError(f"top_k must be >= 0 (0 = off), got {top_k}")
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")


def _as_ids(tokenizer: Any, prompt: str | Sequence[int]) -> list[int]:
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    return [int(t) for t in prompt]


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: str | Sequence[int] | Sequence[str | Sequence[int]],
    *,
    max_new_tokens: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    stop_ids: Sequence[int] | None = None,
    seed: int | None = None,
    batch_size: int = 32,
    return_ids: bool = False,
) -> list[str] | list[list[int]]:
    """Continue each prompt; return the generated texts (or token ids).

    Args:
        model: a Hugging Face causal LM; its own ``generate`` decodes, with
            the :func:`generation_config` of these arguments.
        tokenizer: decodes the output; encodes prompts given as strings
            (with its usual special tokens). Prompts given as token ids are
            used as they are.
        do_sample: sample (``temperature``, ``top_k``, ``top_p``) instead of greedy.
        stop_ids: tokens that end a sequence (any of them); default the
            tokenizer's EOS. Ids outside the vocabulary (``-1``) never stop one.
        seed: seeds torch's generator inside a fork of its state, so draws are
            reproducible and the caller's random stream is untouched.

    The stop token itself is not part of the result.

    >>> texts = generate(model, tokenizer, ["Reverse: cat\\n"], max_new_tokens=8)  # doctest: +SKIP
    """
    _check(temperature, top_k, top_p, max_new_tokens)
    single = isinstance(prompts, str) or (
        isinstance(prompts, Sequence) and bool(prompts) and isinstance(prompts[0], int)
    )
    items = [prompts] if single else list(prompts)
    ids = [_as_ids(tokenizer, p) for p in items]
    if any(len(x) == 0 for x in ids):
        raise ConfigError("generate: every prompt needs at least one token")
    if stop_ids is None:
        stop_ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    vocab = model.get_input_embeddings().num_embeddings
    # a stop id the model cannot produce (say -1) only means: never stop early
    valid_stops = [int(t) for t in stop_ids if 0 <= int(t) < vocab]
    pad = tokenizer.pad_token_id
    pad = pad if pad is not None else (valid_stops[0] if valid_stops else 0)
    config = generation_config(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        stop_ids=valid_stops,
        pad_id=pad,
    )
    device = model.get_input_embeddings().weight.device
    devices = [device] if device.type == "cuda" else []
    was_training = model.training
    model.eval()
    try:
        # sampling draws from torch's generator; a seed is applied inside a fork of
        # the generator state, so the caller's random stream is left as it was
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            outs: list[list[int]] = []
            for start in range(0, len(ids), batch_size):
                outs += _generate_batch(
                    model, ids[start : start + batch_size], device, config, list(stop_ids)
                )
    finally:
        model.train(was_training)
    result: list[Any] = (
        outs if return_ids else [tokenizer.decode(o, skip_special_tokens=True) for o in outs]
    )
    return result[0] if single else result


def generation_config(
    *,
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_k: int,
    top_p: float,
    stop_ids: Sequence[int],
    pad_id: int,
) -> Any:
    """The :class:`transformers.GenerationConfig` that :func:`generate` decodes with.

    ``top_k=0`` and ``top_p=1`` switch their filter off; ``stop_ids`` become
    ``eos_token_id`` (every one of them stops a sequence).

    >>> cfg = generation_config(max_new_tokens=8, do_sample=True, temperature=0.7,
    ...                         top_k=5, top_p=0.9, stop_ids=[2, 7], pad_id=0)
    >>> cfg.eos_token_id, cfg.top_k, cfg.max_new_tokens
    ([2, 7], 5, 8)
    """
    from transformers import GenerationConfig

    kw: dict[str, Any] = {}
    if do_sample:
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        eos_token_id=list(stop_ids),
        pad_token_id=pad_id,
        use_cache=True,
        **kw,
    )


def _generate_batch(
    model: torch.nn.Module,
    prompts: list[list[int]],
    device: torch.device,
    config: Any,
    stop_ids: list[int],
) -> list[list[int]]:
    pad = config.pad_token_id
    B, L = len(prompts), max(len(p) for p in prompts)
    input_ids = torch.full((B, L), pad, dtype=torch.long, device=device)
    attention = torch.zeros(B, L, dtype=torch.long, device=device)
    for b, p in enumerate(prompts):  # left padding: every prompt ends at column L-1
        input_ids[b, L - len(p) :] = torch.tensor(p, device=device)
        attention[b, L - len(p) :] = 1
    out = model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config)
    gen = out[:, L:].tolist()  # (B, steps)
    stop_set = set(stop_ids)
    result = []
    for row in gen:
        cut = next((i for i, t in enumerate(row) if t in stop_set), len(row))
        result.append(row[:cut])
    return result
