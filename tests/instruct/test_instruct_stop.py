"""Every trained answer ends with a labelled end-of-turn token (issue: Qwen1.5's template)."""

from __future__ import annotations

import copy
import warnings

import pytest

from gradwise.instruct import (
    IGNORE_INDEX,
    Example,
    _stop,
    get_template,
    tokenize_dataset,
    tokenize_example,
)

# Qwen1.5's chat template as published: `<|im_end|>` only when more messages follow
QWEN15 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content']}}"
    "{% if (loop.last and add_generation_prompt) or not loop.last %}"
    "{{ '<|im_end|>' + '\\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt and messages[-1]['role'] != 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# ChatML that always closes a turn
CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# never writes an end-of-turn token
PLAIN = (
    "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}"
)
REPRO = Example(
    [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you"},
        {"role": "assistant", "content": "fine"},
    ]
)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(_stop, "_WARNED", set())


def _tok(special_tokenizer, tokenizer, jinja):
    return special_tokenizer(tokenizer, ["<|im_start|>", "<|im_end|>"], chat_template=jinja)


def _chat_ids(tok, messages):
    out = tok.apply_chat_template(messages, tokenize=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def _first_answer_end(t):
    i = next(i for i, lbl in enumerate(t.labels) if lbl != IGNORE_INDEX)
    while t.labels[i] != IGNORE_INDEX:
        i += 1
    return i


def _labelled_runs(tok, t):
    runs, cur = [], []
    for i, lbl in zip(t.input_ids, t.labels):
        if lbl != IGNORE_INDEX:
            cur.append(i)
        elif cur:
            runs.append(tok.decode(cur))
            cur = []
    return runs + ([tok.decode(cur)] if cur else [])


def test_qwen15_repro_every_answer_ends_with_a_labelled_im_end(special_tokenizer, tokenizer):
    tok = _tok(special_tokenizer, tokenizer, QWEN15)
    tpl = get_template("tokenizer", tok)
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert _stop.end_of_turn_id(tpl) == end
    # before: the template's own labels have no end-of-turn token
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        off = tokenize_example(REPRO, tpl, close_turns=False)
    assert not caught
    assert _labelled_runs(tok, off) == ["hello", "fine"]
    assert off.input_ids == _chat_ids(tok, REPRO.messages)
    with pytest.warns(UserWarning, match="only when more messages follow"):
        t = tokenize_example(REPRO, tpl)
    assert _labelled_runs(tok, t) == ["hello<|im_end|>", "fine<|im_end|>"]
    # the first <|im_end|> is the template's own (now labelled); the last is appended
    assert t.input_ids == off.input_ids + [end]
    assert t.labels[-1] == end
    assert t.prompt_length == off.prompt_length
    assert sum(lbl == end for lbl in t.labels) == 2


def test_single_turn_qwen15_answer_gets_the_stop_token(special_tokenizer, tokenizer):
    tok = _tok(special_tokenizer, tokenizer, QWEN15)
    with pytest.warns(UserWarning):
        t = tokenize_example(Example.from_alpaca("hi", "hello"), get_template("tokenizer", tok))
    assert _labelled_runs(tok, t) == ["hello<|im_end|>"]


def test_template_that_always_closes_turns_is_unchanged(special_tokenizer, tokenizer):
    tok = _tok(special_tokenizer, tokenizer, CHATML)
    tpl = get_template("tokenizer", tok)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        on = tokenize_example(REPRO, tpl)
        builtin = tokenize_example(REPRO, get_template("chatml", tokenizer))
    off = tokenize_example(REPRO, tpl, close_turns=False)
    assert (on.input_ids, on.labels, on.prompt_length) == (off.input_ids, off.labels, off.prompt_length)
    assert on.input_ids == _chat_ids(tok, REPRO.messages)
    assert _labelled_runs(tok, on) == ["hello<|im_end|>\n", "fine<|im_end|>\n"]
    assert _labelled_runs(tokenizer, builtin) == ["hello<|im_end|>\n", "fine<|im_end|>\n"]


def test_template_without_any_stop_token_gets_eos_after_every_answer(tokenizer):
    tok = copy.deepcopy(tokenizer)  # the shared tokenizer is not modified
    tok.chat_template = PLAIN
    tpl = get_template("tokenizer", tok)
    eos = tok.eos_token_id
    assert _stop.end_of_turn_id(tpl) == eos
    with pytest.warns(UserWarning, match="does not write it after an answer"):
        t = tokenize_example(REPRO, tpl)
    off = tokenize_example(REPRO, tpl, close_turns=False)
    # each answer's segment (its text and the template's newline), then EOS
    assert _labelled_runs(tok, off) == [" hello\n", " fine\n"]
    assert _labelled_runs(tok, t) == [" hello\n<|endoftext|>", " fine\n<|endoftext|>"]
    assert len(t) == len(off) + 2
    assert t.labels.count(eos) == 2
    # the final prompt moved by the one token inserted after the first answer
    assert t.prompt_length == off.prompt_length + 1
    cut = _first_answer_end(off)
    assert t.input_ids == off.input_ids[:cut] + [eos] + off.input_ids[cut:] + [eos]


def test_warning_fires_once_per_run(special_tokenizer, tokenizer):
    tok = _tok(special_tokenizer, tokenizer, QWEN15)
    tpl = get_template("tokenizer", tok)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, _ = tokenize_dataset([REPRO] * 3, tpl)
        tokenize_example(REPRO, get_template("tokenizer", tok))
    mine = [w for w in caught if "end-of-turn" in str(w.message)]
    assert len(mine) == 1
    assert "'<|im_end|>'" in str(mine[0].message) and "close_turns=False" in str(mine[0].message)
    assert all(t.labels[-1] == tok.convert_tokens_to_ids("<|im_end|>") for t in out)


def test_switch_turns_it_off_in_the_dataset(special_tokenizer, tokenizer):
    tok = _tok(special_tokenizer, tokenizer, QWEN15)
    tpl = get_template("tokenizer", tok)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, _ = tokenize_dataset([REPRO], tpl, close_turns=False)
    assert _labelled_runs(tok, out[0]) == ["hello", "fine"]


def test_assistant_turns_last_closes_only_the_trained_answer(special_tokenizer, tokenizer):
    tok = _tok(special_tokenizer, tokenizer, QWEN15)
    with pytest.warns(UserWarning):
        t = tokenize_example(REPRO, get_template("tokenizer", tok), assistant_turns="last")
    assert _labelled_runs(tok, t) == ["fine<|im_end|>"]


def test_end_of_turn_is_the_templates_token_not_eos(special_tokenizer, tokenizer):
    # Llama 3's shape: every turn ends with <|eot_id|>, EOS is another token
    llama3 = (
        "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + "
        "'<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
        "{% endif %}"
    )
    tok = special_tokenizer(
        tokenizer,
        ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        bos="<|begin_of_text|>",
        eos="<|end_of_text|>",
        chat_template=llama3,
    )
    tpl = get_template("tokenizer", tok)
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert eot != tok.eos_token_id
    assert _stop.end_of_turn_id(tpl) == eot
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = tokenize_example(REPRO, tpl)
    assert t.input_ids == _chat_ids(tok, REPRO.messages)
    assert _labelled_runs(tok, t) == ["hello<|eot_id|>", "fine<|eot_id|>"]


def test_config_field_close_turns():
    from gradwise.config import parse_config
    from gradwise.errors import ConfigError
    from gradwise.instruct import InstructConfig

    base = {"model": {"path": "m"}, "data": {"train": "x"}}
    assert parse_config(base, InstructConfig).data.close_turns is True
    off = {"model": {"path": "m"}, "data": {"train": "x", "close_turns": False}}
    assert parse_config(off, InstructConfig).data.close_turns is False
    bad = {"model": {"path": "m"}, "data": {"train": "x", "close_turns": "sometimes"}}
    with pytest.raises(ConfigError, match="data.close_turns"):
        parse_config(bad, InstructConfig)
