"""The public packed-attention API: examples kept apart inside, the model restored after."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.instruct import (
    IGNORE_INDEX,
    PackedAttention,
    TokenizedExample,
    collate_packed,
    pack,
    packed_attention,
)
from gradwise.instruct import _varlen as varlen


def _examples(vocab, lengths, seed=0):
    rng = random.Random(seed)
    out = []
    for n in lengths:
        ids = [rng.randrange(4, vocab) for _ in range(n)]
        out.append(TokenizedExample(ids, [IGNORE_INDEX] + ids[1:], 1))
    return out


def _check_packed_logits_equal_alone(model, mode):
    exs = _examples(model.config.vocab_size, [7, 12, 5, 20, 9, 3, 16, 11])
    rows = [[exs[i] for i in r] for r in pack([len(e) for e in exs], 32)]
    assert len(rows) < len(exs)
    batch = collate_packed(rows, pad_id=0, attention=mode)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        logits = model(**inputs, use_cache=False).logits
        for b, row in enumerate(rows):
            start = 0
            for ex in row:
                alone = model(input_ids=torch.tensor([ex.input_ids])).logits[0]
                got = logits[b, start : start + len(ex)]
                torch.testing.assert_close(got, alone, rtol=1e-5, atol=1e-5)
                start += len(ex)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("mode", ["auto", "varlen", "block_mask"])
def test_context_keeps_packed_examples_apart_and_restores(arch, mode, tiny_llama, tiny_gpt2):
    model = tiny_llama if arch == "llama" else tiny_gpt2
    before = model.config._attn_implementation
    with packed_attention(model, mode) as pa:
        assert isinstance(pa, PackedAttention)
        assert pa.mode == ("varlen" if mode == "auto" else mode)
        switched = model.config._attn_implementation
        assert switched == (varlen.NAME if pa.mode == "varlen" else before)
        _check_packed_logits_equal_alone(model, pa.mode)
    assert model.config._attn_implementation == before


def test_plain_call_returns_a_handle_restored_once(tiny_llama):
    model = tiny_llama
    before = model.config._attn_implementation
    pa = packed_attention(model, "varlen")
    try:
        assert model.config._attn_implementation == varlen.NAME
        _check_packed_logits_equal_alone(model, pa.mode)
    finally:
        pa.restore()
    assert model.config._attn_implementation == before
    pa.restore()  # a second restore changes nothing
    assert model.config._attn_implementation == before


def test_restored_after_an_exception_and_a_non_default_implementation(tiny_gpt2):
    model = copy.deepcopy(tiny_gpt2)
    model.set_attn_implementation("eager")
    with pytest.raises(RuntimeError, match="boom"), packed_attention(model, "varlen"):
        assert model.config._attn_implementation == varlen.NAME
        raise RuntimeError("boom")
    assert model.config._attn_implementation == "eager"


def test_auto_falls_back_to_block_mask_and_bad_modes_fail(tiny_llama):
    with packed_attention(torch.nn.Linear(2, 2), "auto") as pa:
        assert pa.mode == "block_mask"
    with pytest.raises(ConfigError, match="packed_attention: varlen: Linear does not pass"):
        packed_attention(torch.nn.Linear(2, 2), "varlen")
    with pytest.raises(ConfigError, match="allowed: auto, block_mask, position_ids, varlen"):
        packed_attention(tiny_llama, "flash")
