"""JSONL reading: both shapes, line-numbered errors, skipping bad lines."""

from __future__ import annotations

import json

import pytest

from gradwise.errors import DataError
from gradwise.instruct import Example, parse_records, read_jsonl, write_jsonl


def _write(tmp_path, lines):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_alpaca_and_chat_lines_become_conversations(tmp_path):
    p = _write(
        tmp_path,
        [
            json.dumps({"instruction": "Reverse", "input": "cat", "output": "tac"}),
            json.dumps({"instruction": "Say hi", "output": "hi"}),
            "",
            json.dumps(
                {
                    "messages": [
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "2+2?"},
                        {"role": "assistant", "content": "4"},
                    ]
                }
            ),
        ],
    )
    data = read_jsonl(p)
    assert len(data) == 3 and data.n_skipped == 0
    a, b, c = data
    assert a.messages[0]["content"] == "Reverse\n\ncat"
    assert a.messages[0]["input"] == "cat" and a.response == "tac" and a.line == 1
    assert "input" not in b.messages[0] and b.messages[0]["content"] == "Say hi"
    assert [m["role"] for m in c.messages] == ["system", "user", "assistant"]
    assert c.line == 4 and c.response == "4"
    assert c.prompt_messages == c.messages[:2]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "line 2, column 2: invalid JSON"),
        (json.dumps({"instruction": "x"}), "line 2: missing field 'output'"),
        (json.dumps({"instruction": "x", "output": 3}), "line 2: field 'output' must be a string"),
        (json.dumps({"text": "x"}), "line 2: neither 'messages'"),
        (json.dumps({"messages": []}), "line 2: field 'messages' must be a non-empty list"),
        (
            json.dumps({"messages": [{"role": "bot", "content": "x"}]}),
            "line 2: messages[0]: unknown role 'bot'",
        ),
        (
            json.dumps({"messages": [{"role": "user", "content": "x"}]}),
            "line 2: no 'assistant' message",
        ),
        (
            json.dumps({"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]}),
            "line 2: messages[0]: missing field 'content'",
        ),
        (
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": "x"},
                        {"role": "system", "content": "s"},
                        {"role": "assistant", "content": "y"},
                    ]
                }
            ),
            "line 2: messages[1]: a 'system' message may only come first",
        ),
        ("[1, 2]", "line 2: expected a JSON object"),
    ],
)
def test_malformed_line_is_reported_by_number(tmp_path, line, message):
    good = json.dumps({"instruction": "a", "output": "b"})
    p = _write(tmp_path, [good, line, good])
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        read_jsonl(p)
    assert str(err.value).startswith(f"{p}: line 2")  # the file, then the line
    assert "set on_error: skip" in str(err.value) and "on_error='skip'" not in str(err.value)
    data = read_jsonl(p, on_error="skip")
    assert len(data) == 2 and [e.line for e in data] == [1, 3]
    assert data.n_skipped == 1 and data.skipped[0][0] == 2 and message in data.skipped[0][1]


def test_fixed_format_rejects_the_other_shape(tmp_path):
    p = _write(tmp_path, [json.dumps({"instruction": "a", "output": "b"})])
    with pytest.raises(DataError, match="line 1: missing field 'messages'"):
        read_jsonl(p, format="chat")
    assert len(read_jsonl(p, format="alpaca")) == 1


def test_missing_file_and_bad_option(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_jsonl(tmp_path / "nope.jsonl")
    p = _write(tmp_path, [json.dumps({"instruction": "a", "output": "b"})])
    with pytest.raises(DataError, match="on_error must be"):
        read_jsonl(p, on_error="ignore")


def test_write_and_read_back_round_trip(tmp_path):
    exs = [Example.from_alpaca("Up", "CAT", "cat"), Example.from_alpaca("Say", "hi")]
    path = write_jsonl(exs, tmp_path / "sub" / "out.jsonl")
    back = read_jsonl(path)
    assert [e.response for e in back] == ["CAT", "hi"]
    assert [m["content"] for m in back[0].messages] == ["Up\n\ncat", "CAT"]
    assert not list(tmp_path.glob("sub/*.tmp"))


def test_parse_records_counts_skips():
    data = parse_records([{"instruction": "a", "output": "b"}, {"oops": 1}], on_error="skip")
    assert len(data) == 1 and data.skipped[0][0] == 2


def test_json_error_reads_once_without_a_doubled_word(tmp_path):
    good = json.dumps({"instruction": "a", "output": "b"})
    p = tmp_path / "cut.jsonl"
    p.write_text(good + '\n{"instruction": "a')  # a file cut mid-string
    with pytest.raises(DataError) as err:
        read_jsonl(p)
    text = str(err.value)
    assert text.startswith(f"{p}: line 2, column ") and "at at" not in text
    assert "(Unterminated string starting)" in text


# --- the three formats people have: alpaca, OpenAI ``messages``, ShareGPT ---------------

_TURNS = [
    ("system", "Be brief."),
    ("user", "2+2?"),
    ("assistant", "4"),
    ("user", "and 3+3?"),
    ("assistant", "6"),
]


def _as_messages(turns):
    return {"messages": [{"role": r, "content": c} for r, c in turns]}


def _as_sharegpt(turns, names=None):
    names = names or {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": names[r], "value": c} for r, c in turns]}


def _plain(example):
    return [(m["role"], m["content"]) for m in example.messages]


def test_messages_and_sharegpt_give_the_same_conversation(tmp_path):
    p = _write(
        tmp_path,
        [
            json.dumps(_as_messages(_TURNS)),
            json.dumps(_as_sharegpt(_TURNS)),
            # ShareGPT exports that already say user/assistant, and a top-level system prompt
            json.dumps(
                {
                    "system": "Be brief.",
                    **_as_sharegpt(_TURNS[1:], {"user": "user", "assistant": "assistant"}),
                }
            ),
        ],
    )
    for data in (read_jsonl(p), parse_records(json.loads(x) for x in p.read_text().splitlines())):
        assert [_plain(e) for e in data] == [_TURNS] * 3  # system prompt and every turn kept
        assert [e.line for e in data] == [1, 2, 3]
    conv = data[1]
    assert conv.response == "6" and _plain(conv)[: len(conv.prompt_messages)] == _TURNS[:4]
    with pytest.raises(DataError, match="line 1: missing field 'conversations'"):
        read_jsonl(p, format="sharegpt")
    assert len(read_jsonl(tmp_path / "d.jsonl", format="sharegpt", on_error="skip")) == 2


def test_alpaca_matches_the_same_single_turn_in_every_format():
    alpaca = {"instruction": "Reverse", "input": "cat", "output": "tac"}
    turns = [("user", "Reverse\n\ncat"), ("assistant", "tac")]
    data = parse_records([alpaca, _as_messages(turns), _as_sharegpt(turns)])
    assert [_plain(e) for e in data] == [turns] * 3
    assert data[0].messages[0]["instruction"] == "Reverse"  # the alpaca template still sees it


_SHAREGPT_BAD = [
    ({"conversations": "hi"}, "line 3: field 'conversations' must be a non-empty list"),
    ({"conversations": [["human", "x"]]}, "line 3: conversations[0] must be an object"),
    (
        {"conversations": [{"from": "human", "value": "x"}, {"from": "bot", "value": "y"}]},
        "line 3: conversations[1].from: 'bot' is not one of human, gpt, system, user, assistant",
    ),
    (
        {"conversations": [{"from": "human", "value": "x"}, {"from": "gpt"}]},
        "line 3: conversations[1]: missing field 'value'",
    ),
    (
        {"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": 5}]},
        "line 3: conversations[1]: field 'value' must be a string, got int",
    ),
    (
        {"conversations": [{"value": "x"}, {"from": "gpt", "value": "y"}]},
        "line 3: conversations[0]: missing field 'from'",
    ),
    (
        {
            "conversations": [
                {"from": "human", "value": "x"},
                {"from": "system", "value": "s"},
                {"from": "gpt", "value": "y"},
            ]
        },
        "line 3: conversations[1].from: a 'system' turn may only come first",
    ),
    (
        {"conversations": [{"from": "gpt", "value": "y"}]},
        "line 3: the first message after an optional 'system' must be 'user'",
    ),
    ({"conversations": [{"from": "human", "value": "x"}]}, "line 3: no 'assistant' message"),
    (
        {"system": 1, "conversations": [{"from": "human", "value": "x"}]},
        "line 3: field 'system' must be a string",
    ),
]
_MESSAGES_BAD = [
    (
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": ["y"]}]},
        "line 3: messages[1]: field 'content' must be a string, got list",
    ),
    ({"messages": [{"content": "x"}]}, "line 3: messages[0]: missing field 'role'"),
]
_ALPACA_BAD = [
    ({"output": "y"}, "line 3: missing field 'instruction'"),
    ({"instruction": "x", "input": 2, "output": "y"}, "line 3: field 'input' must be a string"),
]


@pytest.mark.parametrize("record, message", _SHAREGPT_BAD + _MESSAGES_BAD + _ALPACA_BAD)
def test_bad_line_in_each_format_names_file_line_and_field(tmp_path, record, message):
    good = [json.dumps(_as_sharegpt(_TURNS)), json.dumps({"instruction": "a", "output": "b"})]
    p = _write(tmp_path, [*good, json.dumps(record), json.dumps(_as_messages(_TURNS))])
    with pytest.raises(DataError) as err:
        read_jsonl(p)
    assert str(err.value).startswith(f"{p}: {message}")  # file, line, field, in that order
    data = read_jsonl(p, on_error="skip")  # the existing on_error rule applies to every format
    assert [e.line for e in data] == [1, 2, 4]
    assert data.skipped == [(3, data.skipped[0][1])] and data.skipped[0][1].startswith(message)


def test_unknown_format_is_refused_before_reading(tmp_path):
    p = _write(tmp_path, [json.dumps({"instruction": "a", "output": "b"})])
    with pytest.raises(
        DataError, match="unknown data format 'openai'; allowed: auto, alpaca, chat, sharegpt"
    ):
        read_jsonl(p, format="openai")


def test_write_jsonl_is_whole_or_nothing(tmp_path):
    path = write_jsonl([Example.from_alpaca("Up", "CAT")], tmp_path / "out.jsonl")
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_jsonl([{"messages": []}, {"bad": object()}], path)  # fails on the second record
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "out.jsonl"
    ]


# --- a base model without a chat template gets ChatML, with one warning --------------


def test_auto_template_defaults_to_chatml_with_one_warning(tokenizer, special_tokenizer):
    import warnings

    from gradwise.instruct import ChatMLTemplate, get_template
    from gradwise.instruct._base import CHATML_JINJA
    from gradwise.instruct._templates import TokenizerTemplate

    base = special_tokenizer(tokenizer, ["<|im_start|>", "<|im_end|>"])
    base.chat_template = None
    base.name_or_path = "base-model-without-template"
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = get_template("auto", base)
        second = get_template("auto", base)
    notes = [w for w in caught if "no chat template" in str(w.message)]
    assert len(notes) == 1 and "'chatml'" in str(notes[0].message)
    assert isinstance(first, ChatMLTemplate) and isinstance(second, ChatMLTemplate)
    assert (
        first.render(msgs, False)
        == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
    )

    # a tokenizer with its own template keeps it, silently
    chat = special_tokenizer(tokenizer, ["<|im_start|>", "<|im_end|>"], chat_template=CHATML_JINJA)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        own = get_template("auto", chat)
    assert isinstance(own, TokenizerTemplate) and not caught
    assert own.render(msgs, False) == chat.apply_chat_template(msgs, tokenize=False)
