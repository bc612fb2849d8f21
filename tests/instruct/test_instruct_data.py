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
