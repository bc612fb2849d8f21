"""Shared fixtures: a small byte-level BPE tokenizer and tiny causal LMs, built offline."""

from __future__ import annotations

import copy

import pytest
import torch

from gradwise.instruct._base import tiny_config, train_tokenizer
from gradwise.instruct._tasks import corpus

# Extra text so that the tokenizer learns merges across the words that the
# templates and tests use (merges make prefix-stability a real question).
_EXTRA = [
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request. ### Instruction: ### Input: ### Response: user assistant system",
    "hello world, the quick brown fox jumps over the lazy dog. Hello! How are you? I am fine.",
] * 20


@pytest.fixture(scope="session")
def tokenizer():
    torch.manual_seed(0)
    return train_tokenizer(corpus(300, seed=0) + _EXTRA, vocab_size=360)


def with_specials(tok, tokens, bos=None, eos=None, chat_template=None):
    """A copy of ``tok`` with extra special tokens and an optional chat template."""
    tok = copy.deepcopy(tok)
    tok.add_special_tokens({"additional_special_tokens": list(tokens)})
    if bos is not None:
        tok.add_special_tokens({"bos_token": bos})
    if eos is not None:
        tok.add_special_tokens({"eos_token": eos})
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


@pytest.fixture(scope="session")
def special_tokenizer():
    return with_specials


def make_model(tokenizer, arch="llama", hidden=32, layers=2, heads=2, seed=0):
    torch.manual_seed(seed)
    from transformers import AutoModelForCausalLM

    cfg = tiny_config(
        arch,
        len(tokenizer),
        hidden=hidden,
        layers=layers,
        heads=heads,
        max_length=256,
        bos_id=tokenizer.bos_token_id,
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
    )
    return AutoModelForCausalLM.from_config(cfg).eval()


@pytest.fixture(scope="session")
def model_factory():
    return make_model


@pytest.fixture(scope="session")
def tiny_llama(tokenizer):
    return make_model(tokenizer, "llama")


@pytest.fixture(scope="session")
def tiny_gpt2(tokenizer):
    return make_model(tokenizer, "gpt2")
