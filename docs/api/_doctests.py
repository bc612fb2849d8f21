"""A griffe extension for the API reference: doctests render as code.

gradwise's docstrings hold ``>>>`` examples in running text and under
``Example:`` headings, where Markdown would read them as a paragraph (and
``[a]\\n[b]`` lines as reference links). This wraps each doctest run, a
``>>>`` line and the lines after it up to a blank one or a dedent, in a
``pycon`` fence. Runs inside a Google ``Examples:`` section are left to
griffe, which renders those itself. Loaded by mkdocs.yml (mkdocstrings).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SECTION = re.compile(r"^(\s*)Examples:\s*$")
_PROMPT = re.compile(r"^(\s*)>>>( |$)")


def fence_doctests(text: str) -> str:
    """``text`` with every doctest run outside an ``Examples:`` section fenced."""
    lines = text.split("\n")
    out: list[str] = []
    section_indent: int | None = None  # inside an Examples: section
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        if section_indent is not None and line.strip() and indent <= section_indent:
            section_indent = None
        heading = _SECTION.match(line)
        if heading:
            section_indent = len(heading.group(1))
        prompt = _PROMPT.match(line)
        if prompt and section_indent is None:
            pad = prompt.group(1)
            j = i
            while j < len(lines) and lines[j].strip() and lines[j].startswith(pad):
                j += 1
            out += [pad + "```pycon", *lines[i:j], pad + "```"]
            i = j
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctests of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
