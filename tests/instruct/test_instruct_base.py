"""The tiny base model: tokenizer, pretraining, an HF directory that from_pretrained loads."""

from __future__ import annotations

import re

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.instruct import (
    TASKS,
    corpus,
    init_base,
    instruction_set,
    instruction_splits,
    task_of,
    train_tokenizer,
)
from gradwise.instruct._tasks import words


def test_tokenizer_round_trip_and_single_character_tokens(tokenizer):
    text = "The sum of 12 and 7 is 19. QXZ backwards is ZXQ.\n<|im_start|>user"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text
    for piece in ["1234567890", "ABCXYZ"]:
        toks = tokenizer.convert_ids_to_tokens(tokenizer(piece)["input_ids"])
        assert toks == list(piece)  # never merged
    for special in ["<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>"]:
        assert len(tokenizer(special)["input_ids"]) == 1
    assert tokenizer.eos_token == tokenizer.bos_token == "<|endoftext|>"
    assert tokenizer.pad_token == "<|pad|>"
    merged = tokenizer.convert_ids_to_tokens(tokenizer(" letters")["input_ids"])
    assert len(merged) < len(" letters")  # lowercase English is merged by BPE


def test_vocab_size_too_small():
    with pytest.raises(ConfigError, match="vocab_size must be at least 260"):
        train_tokenizer(["a"], vocab_size=100)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_init_base_pretrains_and_saves_a_loadable_directory(tmp_path, arch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "base"
    info = init_base(
        out,
        arch=arch,
        hidden=32,
        layers=2,
        heads=2,
        vocab_size=320,
        max_length=64,
        documents=300,
        steps=40,
        batch_size=8,
        lr=1e-2,
        seed=0,
    )
    assert info.path == out and len(info.losses) == 40
    first, last = sum(info.losses[:5]) / 5, sum(info.losses[-5:]) / 5
    assert last < first - 1.0  # it learned something
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.model_type == arch
    assert sum(p.numel() for p in model.parameters()) == info.n_parameters
    assert tok.chat_template and tok.eos_token == "<|endoftext|>"
    # the saved weights reproduce the pretraining loss on a training row
    ids = torch.tensor([tok(corpus(1, seed=0)[0])["input_ids"][:64]])
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss
    assert loss < first - 1.0


def test_init_base_replaces_an_existing_directory(tmp_path):
    out = tmp_path / "base"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    init_base(
        out,
        hidden=16,
        layers=1,
        heads=2,
        vocab_size=300,
        max_length=32,
        documents=50,
        steps=1,
        batch_size=2,
    )
    assert not (out / "stale.txt").exists() and (out / "config.json").is_file()


def test_task_facts_and_instructions_by_hand():
    # every answer, fact and instruction of a few items, written out
    cases = {
        "reverse": ({"w": "BAKO", "lower": "bako"}, "OKAB", "BAKO backwards is OKAB."),
        "uppercase": ({"w": "BAKO", "lower": "bako"}, "BAKO", "bako in capitals is BAKO."),
        "spell": ({"w": "TUF", "lower": "tuf"}, "T-U-F", "TUF spelled out is T-U-F."),
        "sort": ({"w": "TUF", "lower": "tuf"}, "FTU", "TUF with sorted letters is FTU."),
        "count": ({"w": "TUF", "lower": "tuf"}, "3", "TUF has 3 letters."),
        "first": ({"w": "TUF", "lower": "tuf"}, "T", "TUF starts with T."),
        "last": ({"w": "TUF", "lower": "tuf"}, "F", "TUF ends with F."),
        "add": ({"a": 7, "b": 9}, "16", "7 plus 9 is 16."),
        "larger": ({"a": 7, "b": 19}, "19", "Of 7 and 19 the larger is 19."),
        "next": ({"n": 99}, "100", "After 99 comes 100."),
    }
    assert set(cases) == set(TASKS)
    for name, (item, answer, fact) in cases.items():
        task = TASKS[name]
        assert task.answer(item) == answer and task.fact(item, 0) == fact
        assert task.instruction(item, 1)["output"] == answer
    assert len(TASKS["add"].items()) == 121 and len(TASKS["larger"].items()) == 420
    assert len(words()) == len(set(words())) == 100
    assert all(w.isupper() and 3 <= len(w) <= 4 for w in words())


def test_instruction_set_holds_out_items_per_task():
    train, test = instruction_set(30, 5, seed=3)
    assert len(train) == 10 * 30 * 2 and len(test) == 50  # two phrasings per trained item
    assert all(sum(task_of(e) == t for e in test) == 5 for t in TASKS)
    assert {task_of(e) for e in train} == set(TASKS)

    # a held-out item is never trained, in any phrasing: compare (task, item fields)
    def key(e):
        name, text = task_of(e), e.messages[0]["content"]
        for p in TASKS[name].prompts:
            pattern = re.sub(r"\\\{\w+\\\}", "([A-Za-z0-9]+)", re.escape(p))
            m = re.fullmatch(pattern, text)
            if m:
                return name, m.groups()
        raise AssertionError(text)

    assert not {key(e) for e in test} & {key(e) for e in train}
    full, _ = instruction_set(None, 20, tasks=["next"])
    assert len(full) == 2 * 80
    with pytest.raises(ConfigError, match="cannot hold out 100"):
        instruction_set(None, 100, tasks=["next"])


def _item_key(e):
    """(task, the item's fields) of an instruction, whatever its phrasing."""
    name, text = task_of(e), e.messages[0]["content"]
    for p in TASKS[name].prompts:
        m = re.fullmatch(re.sub(r"\\\{\w+\\\}", "([A-Za-z0-9]+)", re.escape(p)), text)
        if m:
            return name, m.groups()
    raise AssertionError(text)


def test_instruction_splits_are_disjoint_per_task():
    tasks = ["first", "last", "count"]
    train, val, test = instruction_splits(80, 10, 10, tasks=tasks, seed=3)
    assert (len(train), len(val), len(test)) == (3 * 80 * 2, 30, 30)
    for split in (val, test):
        assert all(sum(task_of(e) == t for e in split) == 10 for t in tasks)
    keys = [{_item_key(e) for e in split} for split in (train, val, test)]
    assert len(keys[1]) == len(keys[2]) == 30  # one phrasing per val/test item
    # no item is in two splits, in any phrasing: test is never trained nor validated on
    assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]
    # without a val split the draw is instruction_set's, example for example
    tr0, va0, te0 = instruction_splits(30, 0, 5, seed=3)
    assert va0 == [] and (tr0, te0) == instruction_set(30, 5, seed=3)
    # the same test items whatever n_val: the val items come after them in the draw
    assert instruction_splits(80, 5, 10, tasks=tasks, seed=3)[2] == test
    with pytest.raises(ConfigError, match="cannot hold out 10 \\(test\\) \\+ 90 \\(val\\)"):
        instruction_splits(None, 90, 10, tasks=["first"])
    with pytest.raises(ConfigError, match="n_val=-1"):
        instruction_splits(None, -1, 10, tasks=["first"])


def test_corpus_states_facts_of_every_task():
    docs = corpus(400, seed=1)
    text = " ".join(docs)
    assert "backwards is" in text and "plus" in text and "comes" in text
    w = words()[0]
    facts = {TASKS["reverse"].fact({"w": w, "lower": w.lower()}, p) for p in range(3)}
    big = " ".join(corpus(3000, seed=2))
    assert any(f in big for f in facts)  # every fact appears in a large enough corpus


def test_chat_tokens_start_from_the_embeddings_they_stand_for(tmp_path):
    # pretraining never sees <|im_start|>/<|im_end|>: end of turn takes EOS's
    # embedding (so a tuned model's stop token has EOS's logit), start of turn the mean
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = init_base(
        tmp_path / "b",
        hidden=16,
        layers=1,
        heads=2,
        vocab_size=300,
        max_length=32,
        documents=50,
        steps=2,
        batch_size=2,
    )
    model = AutoModelForCausalLM.from_pretrained(info.path)
    tok = AutoTokenizer.from_pretrained(info.path)
    emb = model.get_input_embeddings().weight
    end, start = tok.convert_tokens_to_ids(["<|im_end|>", "<|im_start|>"])
    torch.testing.assert_close(emb[end], emb[tok.eos_token_id])
    specials = set(
        tok.convert_tokens_to_ids(["<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>"])
    )
    seen = [i for i in range(emb.shape[0]) if i not in specials]
    torch.testing.assert_close(emb[start], emb[seen].mean(0))
    with torch.no_grad():  # tied: the output logits of EOS and end of turn are equal
        logits = model(input_ids=torch.tensor([[tok.eos_token_id, start]])).logits
    torch.testing.assert_close(logits[..., end], logits[..., tok.eos_token_id])
