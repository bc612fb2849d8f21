"""Response-only labels: alpaca, chat, multi-turn, prefix stability, truncation."""

from __future__ import annotations

import pytest

from gradwise.errors import ConfigError, DataError
from gradwise.instruct import (
    IGNORE_INDEX,
    Example,
    get_template,
    tokenize_dataset,
    tokenize_example,
    truncate,
)
from gradwise.instruct._templates import ALPACA_PREAMBLE, ALPACA_PREAMBLE_INPUT

CHAT = Example(
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": "Hello! How are you?"},
        {"role": "user", "content": "the quick fox"},
        {"role": "assistant", "content": "jumps over the lazy dog."},
    ]
)


def _labelled_text(tok, t):
    return tok.decode([i for i, lbl in zip(t.input_ids, t.labels) if lbl != IGNORE_INDEX])


def _spans(t):
    """Runs of labelled positions as (start, end) pairs."""
    spans, start = [], None
    for i, lbl in enumerate(t.labels + [IGNORE_INDEX]):
        if lbl != IGNORE_INDEX and start is None:
            start = i
        if lbl == IGNORE_INDEX and start is not None:
            spans.append((start, i))
            start = None
    return spans


def test_alpaca_labels_cover_exactly_response_and_eos(tokenizer):
    tpl = get_template("alpaca", tokenizer)
    ex = Example.from_alpaca("Reverse the word: cat", "tac")
    t = tokenize_example(ex, tpl)
    prompt = f"{ALPACA_PREAMBLE}\n\n### Instruction:\nReverse the word: cat\n\n### Response:\n"
    assert tokenizer.decode(t.input_ids) == prompt + "tac<|endoftext|>"
    assert t.input_ids[: t.prompt_length] == tokenizer(prompt)["input_ids"]
    assert t.labels[: t.prompt_length] == [IGNORE_INDEX] * t.prompt_length
    assert t.labels[t.prompt_length :] == t.input_ids[t.prompt_length :]
    assert _labelled_text(tokenizer, t) == "tac<|endoftext|>"
    assert t.labels[-1] == tokenizer.eos_token_id


def test_alpaca_input_section(tokenizer):
    tpl = get_template("alpaca", tokenizer)
    t = tokenize_example(Example.from_alpaca("Reverse the word.", "tac", "cat"), tpl)
    text = tokenizer.decode(t.input_ids)
    assert text.startswith(ALPACA_PREAMBLE_INPUT)
    assert "### Instruction:\nReverse the word.\n\n### Input:\ncat\n\n### Response:\ntac" in text


def test_chatml_multi_turn_trains_assistant_turns_only(tokenizer):
    tpl = get_template("chatml", tokenizer)
    t = tokenize_example(CHAT, tpl)
    text = tokenizer.decode(t.input_ids)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhello world<|im_end|>\n"
        "<|im_start|>assistant\nHello! How are you?<|im_end|>\n<|im_start|>user\nthe quick fox"
        "<|im_end|>\n<|im_start|>assistant\njumps over the lazy dog.<|im_end|>\n"
    )
    spans = _spans(t)
    assert [tokenizer.decode(t.input_ids[a:b]) for a, b in spans] == [
        "Hello! How are you?<|im_end|>\n",
        "jumps over the lazy dog.<|im_end|>\n",
    ]
    # everything outside the two spans (system, user, markup, "assistant\n") is -100
    inside = {i for a, b in spans for i in range(a, b)}
    assert all(t.labels[i] == IGNORE_INDEX for i in range(len(t)) if i not in inside)
    assert tokenizer.decode(t.input_ids[: t.prompt_length]).endswith(
        "the quick fox<|im_end|>\n<|im_start|>assistant\n"
    )


def test_last_turn_only(tokenizer):
    t = tokenize_example(CHAT, get_template("chatml", tokenizer), assistant_turns="last")
    assert _labelled_text(tokenizer, t) == "jumps over the lazy dog.<|im_end|>\n"


def test_tokenizer_template_equals_builtin_chatml(tokenizer):
    # the base tokenizer ships a ChatML Jinja template: same ids and labels
    a = tokenize_example(CHAT, get_template("tokenizer", tokenizer))
    b = tokenize_example(CHAT, get_template("chatml", tokenizer))
    assert (a.input_ids, a.labels, a.prompt_length) == (b.input_ids, b.labels, b.prompt_length)


def test_messages_after_last_answer_are_context(tokenizer):
    ex = Example(CHAT.messages + [{"role": "user", "content": "bye"}])
    t = tokenize_example(ex, get_template("chatml", tokenizer))
    assert tokenizer.decode(t.input_ids).endswith("<|im_start|>user\nbye<|im_end|>\n")
    assert t.labels[-3:] == [IGNORE_INDEX] * 3
    assert len(_spans(t)) == 2


def test_non_prefix_preserving_template_is_rejected(special_tokenizer, tokenizer):
    # renders earlier answers differently once later messages follow
    jinja = (
        "{% for m in messages %}{% if m.role == 'assistant' and not loop.last %}[old] {% endif %}"
        "{{ m.role }}: {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    tok = special_tokenizer(tokenizer, [], chat_template=jinja)
    with pytest.raises(
        DataError, match="not prefix-preserving: the rendering up to assistant turn 1"
    ):
        tokenize_example(CHAT, get_template("tokenizer", tok))


def test_not_prefix_stable_tokenization_split_or_error(special_tokenizer, tokenizer):
    # The generation prompt ends with a space: alone it is a token of its own,
    # followed by the answer it merges into " the" (byte-level BPE).
    jinja = (
        "{% for m in messages %}{% if m.role == 'user' %}Q: {{ m.content }}\n"
        "{% else %}A: {{ m.content }}{{ eos_token }}\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}A: {% endif %}"
    )
    tok = special_tokenizer(tokenizer, [], chat_template=jinja)
    tpl = get_template("tokenizer", tok)
    ex = Example.from_alpaca("greet", "the lazy dog")
    prompt_ids = tok("Q: greet\nA: ", add_special_tokens=False)["input_ids"]
    whole = tok("Q: greet\nA: the lazy dog<|endoftext|>\n", add_special_tokens=False)["input_ids"]
    assert whole[: len(prompt_ids)] != prompt_ids  # the premise: not prefix-stable

    with pytest.raises(DataError, match="not prefix-stable"):
        tokenize_example(ex, tpl, unstable="error")
    (t,), stats = tokenize_dataset([ex], tpl)
    assert stats.n_split == 1
    # the prompt is tokenized as at inference time, the answer on its own
    assert t.input_ids[: t.prompt_length] == prompt_ids
    answer = tok("the lazy dog<|endoftext|>", add_special_tokens=False)["input_ids"]
    assert t.labels[t.prompt_length :][: len(answer)] == answer


def test_truncation_modes(tokenizer):
    tpl = get_template("chatml", tokenizer)
    full = tokenize_example(CHAT, tpl)
    n, p = len(full), full.prompt_length
    resp = n - p
    keep = tokenize_example(CHAT, tpl, max_length=resp + 3)
    assert keep.input_ids == full.input_ids[-(resp + 3) :]  # oldest context dropped
    assert keep.prompt_length == 3 and keep.labels[3:] == full.labels[p:]
    start = truncate(full, 10, "keep_start")
    assert start.input_ids == full.input_ids[:10] and start.n_labels == 0
    end = truncate(full, 10, "keep_end")
    assert end.input_ids == full.input_ids[-10:] and end.prompt_length == 0
    # a response longer than max_length: keep the start (prompt + first tokens)
    long = Example.from_alpaca("hi", "the quick brown fox jumps over the lazy dog " * 3)
    full = tokenize_example(long, tpl)
    p = full.prompt_length
    assert len(full) - p > p + 2
    short = tokenize_example(long, tpl, max_length=p + 2)
    assert short.input_ids == full.input_ids[: p + 2] and short.n_labels == 2


def test_dataset_drops_examples_without_labels(tokenizer):
    tpl = get_template("chatml", tokenizer)
    out, stats = tokenize_dataset(
        [CHAT, Example.from_alpaca("x", "y", line=7)], tpl, max_length=5, truncation="keep_start"
    )
    assert stats.n_examples == 2 and stats.n_truncated == 2
    assert stats.n_dropped == 2 and stats.dropped[1][0] == 7 and not out


def test_unknown_template_and_missing_chat_template(special_tokenizer, tokenizer):
    with pytest.raises(ConfigError, match="unknown template 'chatm' \\(did you mean 'chatml'"):
        get_template("chatm", tokenizer)
    tok = special_tokenizer(tokenizer, [])
    tok.chat_template = None
    with pytest.raises(ConfigError, match="has no chat_template"):
        get_template("tokenizer", tok)


def test_chatml_needs_single_token_markers():
    class NoMarkers:  # a tokenizer without <|im_end|> as one token
        eos_token, eos_token_id = "</s>", 0

        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": list(range(len(text)))}

    with pytest.raises(ConfigError, match="needs '<\\|im_end\\|>' to be one token"):
        get_template("chatml", NoMarkers())
