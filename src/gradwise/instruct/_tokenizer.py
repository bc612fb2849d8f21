"""The tiny base model's tokenizer: byte-level BPE with single digits and capitals.

:func:`train_tokenizer` trains it with ``tokenizers`` on a corpus and wraps
it as a transformers fast tokenizer with the special tokens
``<|endoftext|>`` (BOS, EOS), ``<|pad|>``, ``<|im_start|>`` and
``<|im_end|>`` and a ChatML chat template (:data:`CHATML_JINJA`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradwise._optional import require
from gradwise.errors import ConfigError

SPECIAL_TOKENS = ("<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>")
CHATML_JINJA = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def train_tokenizer(texts: Sequence[str], vocab_size: int = 384) -> Any:
    """Train a byte-level BPE tokenizer; return a transformers fast tokenizer.

    All 256 byte symbols are in the vocabulary, so any text encodes;
    ``vocab_size`` bounds the merges learned on top of them. Digits and
    capital letters are never merged.

    >>> tok = train_tokenizer(["the cat sat", "the dog ran"], vocab_size=300)
    >>> tok.decode(tok("the cat 42")["input_ids"])
    'the cat 42'
    """
    require("tokenizers", "hf", "train_tokenizer")
    require("transformers", "hf", "train_tokenizer")
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
        raise ConfigError(
            f"vocab_size must be at least {len(alphabet) + len(SPECIAL_TOKENS)} "
            f"(256 bytes + {len(SPECIAL_TOKENS)} special tokens), got {vocab_size}"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            # one token per digit and capital letter: arithmetic and the
            # letter tasks see every character (BPE merges would hide them)
            pre_tokenizers.Split(Regex("[0-9A-Z]"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    hf.chat_template = CHATML_JINJA
    return hf
