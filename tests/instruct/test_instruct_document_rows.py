"""Pretraining a base on one document per row, and corpora with fresh words."""

from __future__ import annotations

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.instruct import TASKS, corpus, init_base
from gradwise.instruct._base import tiny_config
from gradwise.instruct._base_cache import full_recipe, recipe_key
from gradwise.instruct._pretrain import document_rows, pretrain
from gradwise.instruct._tasks import words


def test_document_rows_hold_one_document_each_padded_with_minus_100(tokenizer):
    texts = [
        "BAKO starts with B.",
        "TUF has 3 letters. The first letter of TUF is T.",
        "QX ends with X.",
    ]
    rows = document_rows(tokenizer, texts, max_length=64)
    eos = tokenizer.eos_token_id
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [eos] for t in texts]
    assert rows.shape == (3, max(map(len, ids)))
    for row, want in zip(rows.tolist(), ids):
        assert row[: len(want)] == want
        assert row[len(want) :] == [-100] * (rows.shape[1] - len(want))
    cut = document_rows(tokenizer, texts, max_length=5)
    assert cut.shape == (3, 5) and cut.tolist()[1] == ids[1][:5]


def test_pretrain_leaves_padding_out_of_the_loss(tokenizer):
    """The first step's loss is the cross-entropy over real tokens only, by hand."""
    torch.manual_seed(0)
    from transformers import AutoModelForCausalLM

    config = tiny_config(
        "llama", len(tokenizer), hidden=16, layers=1, heads=2, max_length=64,
        eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_config(config)
    rows = document_rows(
        tokenizer, ["BAKO starts with B.", "TUF has 3 letters. TUF ends with F."], 64
    )
    with torch.no_grad():
        x = rows.masked_fill(rows < 0, tokenizer.pad_token_id)
        logits = model(input_ids=x).logits[:, :-1]
        target = rows[:, 1:]
        want = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100
        )
    losses = pretrain(model, rows, steps=1, batch_size=2, lr=0.0)
    assert losses[0] == pytest.approx(want.item(), rel=1e-5)


def test_padded_rows_need_a_pad_token(tokenizer):
    from transformers import AutoModelForCausalLM

    config = tiny_config("llama", len(tokenizer), hidden=16, layers=1, heads=2)
    model = AutoModelForCausalLM.from_config(config)  # no pad_token_id
    rows = document_rows(tokenizer, ["BAKO starts with B.", "TUF has 3 letters."], 64)
    with pytest.raises(ConfigError, match="pad_token_id"):
        pretrain(model, rows, steps=1, batch_size=2)


def test_fresh_words_state_facts_of_new_words_in_the_given_share():
    closed = set(words())
    tasks = ["first", "count"]
    assert corpus(50, tasks=tasks, seed=3) == corpus(50, tasks=tasks, seed=3, fresh_words=0.0)
    docs = corpus(2000, sentences=(1, 1), tasks=tasks, seed=0, fresh_words=0.5)
    subjects = []
    for doc in docs:
        w = next(t for t in doc.rstrip(".").split() if t.isupper() and len(t) >= 3)
        subjects.append(w)
    new = sum(w not in closed for w in subjects) / len(subjects)
    # a fresh word is one of 26^3 + 26^4 strings; only about 0.02% of them are in the world
    assert 0.45 < new < 0.55
    for doc, w in zip(docs, subjects):
        t = TASKS["first"] if "first" in doc or "start" in doc or "begin" in doc else TASKS["count"]
        assert any(doc == t.fact({"w": w, "lower": w.lower()}, p) for p in range(len(t.facts)))
    with pytest.raises(ConfigError, match="fresh_words"):
        corpus(2, fresh_words=1.5)


def test_new_recipe_fields_keep_old_keys_and_count_when_set():
    old = {"hidden": 64, "steps": 300, "tasks": ["first"]}
    full = full_recipe(old)
    assert not {"sentences", "fresh_words", "rows"} & set(full)  # defaults: not in the key
    assert full_recipe({**old, "rows": "packed", "sentences": (3, 6)}) == full
    keys = {
        recipe_key(full_recipe(r))
        for r in (old, {**old, "rows": "documents"}, {**old, "fresh_words": 0.5},
                  {**old, "sentences": [1, 1]})
    }  # fmt: skip
    assert len(keys) == 4


def test_init_base_on_document_rows_and_its_errors(tmp_path):
    info = init_base(
        tmp_path / "b", hidden=16, layers=1, heads=2, vocab_size=300, max_length=32,
        documents=200, steps=30, batch_size=16, lr=1e-2, tasks=["first", "count"],
        sentences=(1, 1), fresh_words=0.5, rows="documents",
    )  # fmt: skip
    assert len(info.losses) == 30
    assert sum(info.losses[-5:]) / 5 < sum(info.losses[:5]) / 5 - 1.0
    with pytest.raises(ConfigError, match="rows must be"):
        init_base(tmp_path / "c", rows="sentences", documents=10, steps=1)
    with pytest.raises(ConfigError, match="sentences must be"):
        init_base(tmp_path / "c", sentences=(0, 2), documents=10, steps=1)
