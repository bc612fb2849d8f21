"""Packing: best-fit rows, block-diagonal masks, and per-token losses equal to unpacked."""

from __future__ import annotations

import contextlib
import copy
import random

import pytest
import torch

from gradwise.errors import ConfigError, DataError
from gradwise.instruct import (
    IGNORE_INDEX,
    TokenizedExample,
    block_causal_mask,
    causal_lm_loss,
    collate_packed,
    collate_padded,
    make_loader,
    pack,
    token_accuracy,
    token_losses,
)
from gradwise.instruct import _varlen as varlen


def _examples(vocab, lengths, seed=0):
    rng = random.Random(seed)
    out = []
    for n in lengths:
        ids = [rng.randrange(4, vocab) for _ in range(n)]
        p = rng.randrange(1, n)  # prompt length: labels from p on
        out.append(TokenizedExample(ids, [IGNORE_INDEX] * p + ids[p:], p))
    return out


def test_pack_best_fit_decreasing_by_hand():
    assert pack([5, 3, 4, 2, 6], 8) == [[4, 3], [0, 1], [2]]
    assert pack([8, 1, 1], 8) == [[0], [1, 2]]
    with pytest.raises(DataError, match="example 1 has 9 tokens, more than max_length=8"):
        pack([3, 9], 8)


def test_pack_is_a_partition_within_capacity():
    rng = random.Random(0)
    lengths = [rng.randint(1, 64) for _ in range(500)]
    rows = pack(lengths, 64)
    flat = sorted(i for r in rows for i in r)
    assert flat == list(range(500))
    assert all(sum(lengths[i] for i in r) <= 64 for r in rows)
    lower = -(-sum(lengths) // 64)
    assert len(rows) <= 11 / 9 * lower + 1  # BFD's worst-case bound


def test_block_causal_mask_by_hand():
    m = block_causal_mask(torch.tensor([[0, 0, 1, 1, -1]]))
    allowed = (m[0, 0] == 0).int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 0, 0, 1],
    ]
    assert m.min() == torch.finfo(torch.float32).min


def test_collate_packed_positions_and_labels():
    a = TokenizedExample([5, 6, 7], [5, 6, 7], 0)
    b = TokenizedExample([8, 9], [IGNORE_INDEX, 9], 1)
    batch = collate_packed([[a, b], [b]], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [8, 9, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]]
    # an example's first label is never a target across the boundary
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9], [-100, 9, -100, -100, -100]]
    assert batch["attention_mask"].shape == (2, 1, 5, 5)
    no_mask = collate_packed([[a, b]], pad_id=0, attention="position_ids")
    assert "attention_mask" not in no_mask


def _alone(model, ex):
    ids = torch.tensor([ex.input_ids])
    logits = model(input_ids=ids).logits
    return token_losses(logits, torch.tensor([ex.labels]))[0]


@contextlib.contextmanager
def _attention(model, attention):
    """Run ``model`` under the packed ``attention`` mode (varlen switches its implementation)."""
    if attention != "varlen":
        yield
        return
    before = varlen.enable(model)
    try:
        with varlen.packed():
            yield
    finally:
        model.set_attn_implementation(before)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("attention", ["block_mask", "position_ids", "varlen"])
def test_packed_per_token_losses_equal_unpacked(arch, attention, tiny_llama, tiny_gpt2):
    model = tiny_llama if arch == "llama" else tiny_gpt2
    exs = _examples(model.config.vocab_size, [7, 12, 5, 20, 9, 3, 16, 11])
    rows = [[exs[i] for i in r] for r in pack([len(e) for e in exs], 32)]
    assert len(rows) < len(exs)
    batch = collate_packed(rows, pad_id=0, attention=attention)
    with torch.no_grad():
        # no KV cache: transformers reads example boundaries from the position
        # ids only when it builds the mask without one (as in training)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with _attention(model, attention):
            logits = model(**inputs, use_cache=False).logits
        packed = token_losses(logits, batch["labels"])  # (B, T-1)
        for b, row in enumerate(rows):
            start = 0
            for ex in row:
                alone = _alone(model, ex)
                n = len(ex)
                # inside a row the targets of an example sit at [start, start + n - 1)
                got = packed[b, start : start + n - 1]
                torch.testing.assert_close(got, alone, rtol=1e-5, atol=1e-5)
                start += n
        # and the mean loss over the batch equals the mean over examples' tokens
        total = sum(_alone(model, ex).sum() for ex in exs)
        n_targets = sum(sum(lbl != IGNORE_INDEX for lbl in ex.labels[1:]) for ex in exs)
        torch.testing.assert_close(causal_lm_loss(logits, batch["labels"]), total / n_targets)


def test_padded_batch_losses_equal_unpadded_and_hf_loss(tiny_llama):
    model = tiny_llama
    exs = _examples(model.config.vocab_size, [7, 12, 5])
    batch = collate_padded(exs, pad_id=0)
    assert batch["labels"][0, 7:].eq(IGNORE_INDEX).all()
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        per = token_losses(out.logits, batch["labels"])
        for b, ex in enumerate(exs):
            torch.testing.assert_close(
                per[b, : len(ex) - 1], _alone(model, ex), rtol=1e-5, atol=1e-5
            )
        # Hugging Face's own shifted loss over the same labels
        hf = model(**batch).loss
    torch.testing.assert_close(causal_lm_loss(out.logits, batch["labels"]), hf)


def test_token_accuracy_by_hand():
    logits = torch.zeros(1, 4, 5)
    logits[0, 0, 2] = logits[0, 1, 3] = logits[0, 2, 0] = 1.0  # predicts 2, 3, 0
    labels = torch.tensor([[-100, 2, 4, 0]])
    assert token_accuracy(logits, labels) == (2, 3)


def test_make_loader_packs_rows_and_yields_pairs():
    exs = _examples(50, [10, 20, 30, 5, 25, 15, 8])
    loader = make_loader(
        exs, batch_size=2, pad_id=0, packing=True, max_length=40, pairs=True, seed=3
    )
    batches = list(loader)
    n_rows = sum(b[0]["input_ids"].shape[0] for b in batches)
    assert n_rows == len(pack([len(e) for e in exs], 40))
    assert all(b[1] is b[0]["labels"] for b in batches)
    real = sum(int((b[0]["position_ids"] >= 0).sum()) for b in batches)
    assert real >= sum(len(e) for e in exs)
    again = [
        b[0]["input_ids"].tolist()
        for b in make_loader(
            exs, batch_size=2, pad_id=0, packing=True, max_length=40, pairs=True, seed=3
        )
    ]
    assert again == [b[0]["input_ids"].tolist() for b in batches]
    with pytest.raises(DataError, match="packing needs max_length"):
        make_loader(exs, batch_size=2, pad_id=0, packing=True)
    with pytest.raises(DataError, match="no examples"):
        make_loader([], batch_size=2, pad_id=0)


def test_collate_packed_varlen_carries_boundaries_not_a_mask():
    a = TokenizedExample([5, 6, 7], [5, 6, 7], 0)
    b = TokenizedExample([8, 9], [IGNORE_INDEX, 9], 1)
    batch = collate_packed([[a, b], [b]], pad_id=0, attention="varlen")
    assert "attention_mask" not in batch
    # row 0: [0, 3) and [3, 5); row 1: [5, 7) and the padding [7, 10)
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 5, 7, 10]
    assert batch["cu_seq_lens_k"] is batch["cu_seq_lens_q"]
    with pytest.raises(DataError, match="allowed: block_mask, position_ids, varlen"):
        collate_packed([[a]], pad_id=0, attention="flash")


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_varlen_gradients_equal_block_mask(arch, tiny_llama, tiny_gpt2):
    base = tiny_llama if arch == "llama" else tiny_gpt2
    exs = _examples(base.config.vocab_size, [9, 4, 13, 6, 2, 10])
    rows = [[exs[i] for i in r] for r in pack([len(e) for e in exs], 24)]
    grads = {}
    for attention in ("block_mask", "varlen"):
        model = copy.deepcopy(base).eval()  # no dropout: both modes see the same function
        batch = collate_packed(rows, pad_id=0, attention=attention)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with _attention(model, attention):
            loss = causal_lm_loss(model(**inputs, use_cache=False).logits, batch["labels"])
        loss.backward()
        grads[attention] = {n: p.grad.clone() for n, p in model.named_parameters()}
    for name, g in grads["block_mask"].items():
        torch.testing.assert_close(grads["varlen"][name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_varlen_is_supported_by_llama_and_gpt2_and_restores_the_model(tiny_llama, tiny_gpt2):
    for model in (tiny_llama, tiny_gpt2):
        before = model.config._attn_implementation
        assert varlen.supported(model)
        assert model.config._attn_implementation == before
    assert not varlen.supported(torch.nn.Linear(2, 2))


def test_varlen_attention_refuses_packed_rows_without_boundaries(tiny_llama):
    q = torch.zeros(1, 2, 4, 8)
    with varlen.packed(), pytest.raises(ConfigError, match="does not pass cu_seq_lens_q"):
        varlen.varlen_attention(tiny_llama.model.layers[0].self_attn, q, q, q, None)
