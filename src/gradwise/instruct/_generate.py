"""Text generation from a causal LM: greedy or sampled, with a KV cache.

Each step picks the next token from the logits ``z`` of the last position:

* greedy: ``argmax z``;
* sampling: ``z / temperature``, then keep the ``top_k`` largest logits,
  then keep the smallest set of tokens whose probability mass reaches
  ``top_p`` (nucleus sampling, Holtzman et al. 2020), renormalize, draw.

A sequence stops at its first stop token (the tokenizer's EOS and, for chat
templates, the end-of-turn token) or after ``max_new_tokens``. Prompts of a
batch are left-padded, with position ids that count real tokens only, so a
prompt generates the same tokens alone and in a batch.
"""

from __future__ import annotations

import inspect
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


def _cache_name(model: torch.nn.Module) -> str:
    # transformers 5 renamed ``past_key_values`` to ``cache`` (the old name warns)
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _cache_of(out: Any) -> Any:
    return out["cache"] if "cache" in out else out["past_key_values"]


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
        model: a Hugging Face causal LM (``model(input_ids, attention_mask,
            position_ids, past_key_values, use_cache)`` returning ``.logits``).
        tokenizer: decodes the output; encodes prompts given as strings
            (with its usual special tokens). Prompts given as token ids are
            used as they are.
        do_sample: sample (``temperature``, ``top_k``, ``top_p``) instead of greedy.
        stop_ids: tokens that end a sequence; default the tokenizer's EOS.
        seed: seeds the sampling generator, so draws are reproducible.

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
    device = next(model.parameters()).device
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        outs: list[list[int]] = []
        for start in range(0, len(ids), batch_size):
            outs += _generate_batch(
                model,
                ids[start : start + batch_size],
                tokenizer,
                device,
                max_new_tokens,
                do_sample,
                temperature,
                top_k,
                top_p,
                list(stop_ids),
                generator,
            )
    finally:
        model.train(was_training)
    result: list[Any] = (
        outs if return_ids else [tokenizer.decode(o, skip_special_tokens=True) for o in outs]
    )
    return result[0] if single else result


def _generate_batch(
    model,
    prompts,
    tokenizer,
    device,
    max_new_tokens,
    do_sample,
    temperature,
    top_k,
    top_p,
    stop_ids,
    generator,
) -> list[list[int]]:
    pad = tokenizer.pad_token_id
    pad = pad if pad is not None else (stop_ids[0] if stop_ids else 0)
    B, L = len(prompts), max(len(p) for p in prompts)
    input_ids = torch.full((B, L), pad, dtype=torch.long, device=device)
    attention = torch.zeros(B, L, dtype=torch.long, device=device)
    for b, p in enumerate(prompts):  # left padding: every prompt ends at column L-1
        input_ids[b, L - len(p) :] = torch.tensor(p, device=device)
        attention[b, L - len(p) :] = 1
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    stops = torch.tensor(stop_ids, dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    new_tokens: list[Tensor] = []
    cache_name = _cache_name(model)
    out = model(
        input_ids=input_ids, attention_mask=attention, position_ids=position_ids, use_cache=True
    )
    for _ in range(max_new_tokens):
        logits = out.logits[:, -1].float()  # (B, V)
        if do_sample:
            logits = top_p_filter(top_k_filter(logits / temperature, top_k), top_p)
            nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
        else:
            nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        new_tokens.append(nxt)
        done |= torch.isin(nxt, stops)
        if bool(done.all()):
            break
        attention = torch.cat([attention, torch.ones(B, 1, dtype=torch.long, device=device)], dim=1)
        position_ids = position_ids[:, -1:] + 1
        out = model(
            input_ids=nxt[:, None],
            attention_mask=attention,
            position_ids=position_ids,
            use_cache=True,
            **{cache_name: _cache_of(out)},
        )
    gen = torch.stack(new_tokens, dim=1).tolist()  # (B, steps)
    result = []
    stop_set = set(stop_ids)
    for row in gen:
        cut = next((i for i, t in enumerate(row) if t in stop_set), len(row))
        result.append(row[:cut])
    return result
