"""No import cycles among gradwise's modules (issue 14, item 7).

The graph is built from the source with ``ast``: an edge ``a -> b`` for every
``import`` / ``from ... import`` in ``a`` that names gradwise module ``b``
(at module level or inside a function: a lazy import still ties the two
modules' designs together), except under ``if TYPE_CHECKING:``. ``from pkg
import name`` counts as an edge to ``pkg.name`` when that is a module, else to
``pkg`` (its ``__init__``, with edges to what it imports), so a submodule that
imports its own package's ``__init__`` while that imports it is a cycle too.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# No cycle is allowed; an entry here would be a known, documented exception.
KNOWN: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "gradwise").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # ``import gradwise.optim._lr as x`` -> the module itself
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node, except under ``if TYPE_CHECKING:`` (type-only imports never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods)) for name, path in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_gradwise_imports():
    graph = _graph()
    assert "gradwise.optim" in graph["gradwise.train._guard"]  # from gradwise.optim import scale_lr
    assert "gradwise.optim._lr" in graph["gradwise.optim"]
    assert "gradwise.schedules._base" in graph["gradwise.schedules._attach"]
    # lazy imports count; type-only ones do not
    assert "gradwise.finetune._groups" in graph["gradwise.train._fsdp"]
    assert "gradwise.optim._optimizer" not in graph["gradwise.optim._dispatch"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_among_gradwise_modules():
    cycles = [c for c in _cycles(_graph()) if frozenset(c) not in KNOWN]
    assert cycles == [], f"import cycles: {cycles}"
