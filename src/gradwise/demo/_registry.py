"""The demo tour: a small registry of sections, each a short runnable lesson."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradwise.errors import unknown

DemoFn = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class DemoSection:
    """A named demo: ``fn(out_dir: Path, quick: bool) -> dict`` of headline numbers."""

    name: str
    title: str
    fn: DemoFn
    order: int


_SECTIONS: dict[str, DemoSection] = {}


def register(name: str, title: str, order: int = 100) -> Callable[[DemoFn], DemoFn]:
    """Decorator adding a demo section; ``order`` sorts the tour."""

    def deco(fn: DemoFn) -> DemoFn:
        _SECTIONS[name] = DemoSection(name, title, fn, order)
        return fn

    return deco


def sections() -> list[DemoSection]:
    """All registered sections, in tour order."""
    _load_builtin_sections()
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.name))


def run_section(name: str, out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Run one section by name and return its headline numbers (and ``seconds``)."""
    _load_builtin_sections()
    if name not in _SECTIONS:
        raise unknown("demo section", name, _SECTIONS)
    start = time.perf_counter()
    result = _SECTIONS[name].fn(out_dir=out_dir, quick=quick)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


# the modules whose import registers a section, in no particular order
_BUILTIN = (
    "_train",
    "_lr",
    "_linear",
    "_finetune",
    "_lora",
    "_see_why",
    "_weight_decay",
    "_instruct",
)


def _load_builtin_sections() -> None:
    # Importing the section modules registers them; done lazily so that
    # `gradwise --help` stays fast. A module missing from an installation
    # (a capability not shipped) is skipped; an import error inside one is not.
    for name in _BUILTIN:
        module = f"gradwise.demo.{name}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
