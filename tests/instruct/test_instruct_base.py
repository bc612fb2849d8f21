"""The tiny base model: tokenizer, pretraining, an HF directory that from_pretrained loads."""

from __future__ import annotations

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.instruct import TASKS, corpus, init_base, instruction_set, task_of, train_tokenizer


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


def test_tasks_answers_by_hand():
    import random

    rng = random.Random(5)
    answers = {
        "reverse": lambda a: a["w"][::-1],
        "spell": lambda a: "-".join(a["w"]),
        "add": lambda a: str(a["a"] + a["b"]),
        "sort": lambda a: "".join(sorted(a["w"])),
        "count": lambda a: str(len(a["w"])),
        "first": lambda a: a["w"][0],
        "last": lambda a: a["w"][-1],
        "larger": lambda a: str(max(a["a"], a["b"])),
        "join": lambda a: a["a"] + a["b"],
        "next": lambda a: str(a["n"] + 1),
    }
    assert set(answers) == set(TASKS)
    for name, task in TASKS.items():
        for _ in range(20):
            args, answer = task.draw(rng)
            assert answer == answers[name](args)


def test_instruction_set_holds_out_prompts_per_task():
    train, test = instruction_set(30, 5, seed=3)
    assert len(train) == 300 and len(test) == 50
    assert {task_of(e) for e in test} == set(TASKS)
    assert all(sum(task_of(e) == t for e in test) == 5 for t in TASKS)
    prompts = {e.messages[0]["content"] for e in train}
    assert not prompts & {e.messages[0]["content"] for e in test}
    with pytest.raises(ConfigError, match="fewer than"):
        instruction_set(1000, 10, tasks=["next"])  # 499 numbers x 2 phrasings
