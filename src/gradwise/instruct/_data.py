"""Instruction data: JSONL in the alpaca, OpenAI ``messages`` or ShareGPT shape.

Three shapes are accepted, one JSON object per line::

    {"instruction": "Reverse the word", "input": "cat", "output": "tac"}
    {"messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": "Reverse cat"},
                  {"role": "assistant", "content": "tac"}]}
    {"conversations": [{"from": "system", "value": "..."},
                       {"from": "human", "value": "Reverse cat"},
                       {"from": "gpt", "value": "tac"}]}

All become an :class:`Example`: a list of messages with roles ``system``,
``user`` and ``assistant``. An alpaca record becomes one user turn (its
``instruction`` and ``input`` are kept on the message, so the alpaca template
can render its ``### Input:`` section) and one assistant turn. ShareGPT's
``from`` values map ``human`` -> ``user`` and ``gpt`` -> ``assistant``
(``system``, ``user`` and ``assistant`` are taken as they are); a top-level
``"system"`` string, as some ShareGPT exports carry, becomes the system prompt.

A bad line (invalid JSON, a missing or mistyped field) is reported with the
file, its line number and the field; by default the first one stops the load,
with ``on_error="skip"`` such lines are skipped and counted in
:attr:`InstructData.skipped`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, overload

from gradwise.errors import DataError
from gradwise.train._io import atomic_write

ROLES = ("system", "user", "assistant")
Format = Literal["auto", "alpaca", "chat", "sharegpt"]
FORMATS = ("auto", "alpaca", "chat", "sharegpt")
#: ShareGPT ``from`` values and the role each becomes
SHAREGPT_ROLES = {
    "human": "user",
    "gpt": "assistant",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
}
OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class Example:
    """One conversation: ``messages`` is a list of ``{"role", "content"}`` dicts.

    ``line`` is the 1-based JSONL line it came from (``None`` when built in
    memory); errors about the example name it.

    >>> ex = Example.from_alpaca("Uppercase", "tac", "input text")
    >>> [m["role"] for m in ex.messages], ex.response
    (['user', 'assistant'], 'tac')
    """

    messages: list[dict[str, str]]
    line: int | None = None

    @classmethod
    def from_alpaca(
        cls, instruction: str, output: str, input: str = "", line: int | None = None
    ) -> Example:
        """Build an example from alpaca fields; a non-empty ``input`` follows the instruction."""
        content = f"{instruction}\n\n{input}" if input else instruction
        user = {"role": "user", "content": content, "instruction": instruction}
        if input:
            user["input"] = input
        return cls([user, {"role": "assistant", "content": output}], line)

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        """All messages before the final assistant turn (what a model is prompted with)."""
        last = max(i for i, m in enumerate(self.messages) if m["role"] == "assistant")
        return self.messages[:last]

    @property
    def response(self) -> str:
        """The content of the final assistant turn (the reference answer)."""
        return [m for m in self.messages if m["role"] == "assistant"][-1]["content"]

    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else "example"


@dataclass
class InstructData(Sequence[Example]):
    """Examples read from a JSONL file, plus the lines that were skipped.

    ``skipped`` holds ``(line_number, reason)`` for each skipped line.
    """

    examples: list[Example]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.examples)

    @overload
    def __getitem__(self, i: int) -> Example: ...

    @overload
    def __getitem__(self, i: slice) -> list[Example]: ...

    def __getitem__(self, i: int | slice) -> Example | list[Example]:
        return self.examples[i]

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)


def _check_str(obj: dict[str, Any], key: str, where: str, optional: bool = False) -> str:
    if key not in obj:
        if optional:
            return ""
        raise DataError(f"{where}: missing field {key!r}")
    value = obj[key]
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    return value


def _parse_chat(obj: dict[str, Any], where: str, line: int | None) -> Example:
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: field 'messages' must be a non-empty list of messages")
    out: list[dict[str, str]] = []
    for i, msg in enumerate(messages):
        at = f"{where}: messages[{i}]"
        if not isinstance(msg, dict):
            raise DataError(f"{at} must be an object with 'role' and 'content'")
        role = _check_str(msg, "role", at)
        if role not in ROLES:
            raise DataError(f"{at}: unknown role {role!r}; allowed: {', '.join(ROLES)}")
        if role == "system" and i != 0:
            raise DataError(f"{at}: a 'system' message may only come first")
        out.append({"role": role, "content": _check_str(msg, "content", at)})
    return _check_order(out, where, line)


def _check_order(out: list[dict[str, str]], where: str, line: int | None) -> Example:
    first = 1 if out[0]["role"] == "system" else 0
    if first >= len(out) or out[first]["role"] != "user":
        raise DataError(f"{where}: the first message after an optional 'system' must be 'user'")
    if not any(m["role"] == "assistant" for m in out):
        raise DataError(f"{where}: no 'assistant' message, so there is nothing to learn")
    return Example(out, line)


def _parse_sharegpt(obj: dict[str, Any], where: str, line: int | None) -> Example:
    turns = obj["conversations"]
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{where}: field 'conversations' must be a non-empty list of turns")
    out: list[dict[str, str]] = []
    system = _check_str(obj, "system", where, optional=True)
    if system:
        out.append({"role": "system", "content": system})
    for i, turn in enumerate(turns):
        at = f"{where}: conversations[{i}]"
        if not isinstance(turn, dict):
            raise DataError(f"{at} must be an object with 'from' and 'value'")
        source = _check_str(turn, "from", at)
        role = SHAREGPT_ROLES.get(source)
        if role is None:
            raise DataError(f"{at}.from: {source!r} is not one of {', '.join(SHAREGPT_ROLES)}")
        if role == "system" and len(out) != 0:
            raise DataError(f"{at}.from: a 'system' turn may only come first")
        out.append({"role": role, "content": _check_str(turn, "value", at)})
    return _check_order(out, where, line)


def _parse_alpaca(obj: dict[str, Any], where: str, line: int | None) -> Example:
    instruction = _check_str(obj, "instruction", where)
    output = _check_str(obj, "output", where)
    return Example.from_alpaca(instruction, output, _check_str(obj, "input", where, True), line)


def parse_record(obj: Any, *, format: Format = "auto", line: int | None = None) -> Example:
    """Turn one decoded JSON object into an :class:`Example`; raise :class:`DataError`."""
    where = f"line {line}" if line is not None else "record"
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    shape = format
    if shape == "auto":
        if "messages" in obj:
            shape = "chat"
        elif "conversations" in obj:
            shape = "sharegpt"
        elif "instruction" in obj or "output" in obj:
            shape = "alpaca"
        else:
            raise DataError(
                f"{where}: neither 'messages' (chat), 'conversations' (sharegpt) nor "
                f"'instruction'/'output' (alpaca); got fields {sorted(obj)}"
            )
    if shape == "chat":
        if "messages" not in obj:
            raise DataError(f"{where}: missing field 'messages'")
        return _parse_chat(obj, where, line)
    if shape == "sharegpt":
        if "conversations" not in obj:
            raise DataError(f"{where}: missing field 'conversations'")
        return _parse_sharegpt(obj, where, line)
    if shape == "alpaca":
        return _parse_alpaca(obj, where, line)
    raise DataError(f"unknown data format {format!r}; allowed: {', '.join(FORMATS)}")


def parse_records(
    records: Iterable[Any], *, format: Format = "auto", on_error: OnError = "raise"
) -> InstructData:
    """Examples from in-memory records (dicts); the index + 1 plays the line number."""
    return _parse_lines(((i, rec, None) for i, rec in enumerate(records, 1)), format, on_error)


def read_jsonl(
    path: str | Path, *, format: Format = "auto", on_error: OnError = "raise"
) -> InstructData:
    """Read instruction data from a JSONL file.

    Args:
        path: the file; blank lines are ignored.
        format: ``"alpaca"``, ``"chat"`` (OpenAI-style ``messages``),
            ``"sharegpt"`` (``conversations`` of ``from``/``value``) or
            ``"auto"`` (decided per line by its keys: ``messages``, then
            ``conversations``, then ``instruction``/``output``).
        on_error: ``"raise"`` stops at the first bad line with a
            :class:`~gradwise.errors.DataError` naming its line number;
            ``"skip"`` leaves it out and records it in ``skipped``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
    >>> _ = p.write_text('{"instruction": "hi", "output": "yo"}\\n{oops\\n')
    >>> data = read_jsonl(p, on_error="skip")
    >>> len(data), data.skipped[0][0]
    (1, 2)
    """
    if on_error not in ("raise", "skip"):
        raise DataError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if format not in FORMATS:
        raise DataError(f"unknown data format {format!r}; allowed: {', '.join(FORMATS)}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"instruction data file not found: {path}")

    def lines() -> Iterator[tuple[int, Any, str | None]]:
        with path.open(encoding="utf-8") as fh:
            for n, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    yield n, json.loads(text), None
                except json.JSONDecodeError as exc:
                    # some messages end in "at" ("Unterminated string starting at")
                    msg = exc.msg.removesuffix(" at")
                    yield n, None, f"line {n}, column {exc.colno}: invalid JSON ({msg})"

    data = _parse_lines(lines(), format, on_error, source=str(path))
    data.source = str(path)
    return data


def _parse_lines(
    items: Iterable[tuple[int, Any, str | None]],
    format: Format,
    on_error: OnError,
    source: str | None = None,
) -> InstructData:
    examples: list[Example] = []
    skipped: list[tuple[int, str]] = []
    for n, obj, json_error in items:
        try:
            if json_error is not None:
                raise DataError(json_error)
            examples.append(parse_record(obj, format=format, line=n))
        except DataError as exc:
            if on_error == "raise":
                where = f"{source}: " if source else ""
                raise DataError(
                    f"{where}{exc} (to leave bad lines out instead, set on_error: skip)"
                ) from None
            skipped.append((n, str(exc)))
    return InstructData(examples, skipped)


def write_jsonl(examples: Iterable[Example | dict[str, Any]], path: str | Path) -> Path:
    """Write examples (chat shape) or raw records as JSONL, atomically.

    The file appears whole or not at all: a record that cannot be written
    (not JSON-serialisable) leaves any earlier file at ``path`` as it was.
    """

    def write(fh: IO[bytes]) -> None:
        for ex in examples:
            rec = ex if isinstance(ex, dict) else {"messages": ex.messages}
            fh.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))

    return atomic_write(path, write)
