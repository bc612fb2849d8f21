"""One helper of each kind (issue 14, item 5): atomic writes and PNG saves live in gradwise._io.

No module calls ``matplotlib.use`` or draws through pyplot, and only the
helper renames a temporary file into place (the one exception: the instruct
package swaps a whole model directory, which a file helper cannot do).
"""

from __future__ import annotations

import ast
from pathlib import Path

import matplotlib

SRC = Path(__file__).resolve().parents[1] / "src" / "gradwise"
RENAMES_ALLOWED = {
    "_io.py",  # the helper
    "instruct/_base.py",  # save_pretrained_atomic swaps a directory
    "instruct/_base_cache.py",  # a cache entry: a directory renamed into place
    "train/_dcp.py",  # a sharded checkpoint: a directory written by every rank, renamed by one
}


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func)


def test_no_module_sets_the_matplotlib_backend_or_uses_pyplot():
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        if any(c == "matplotlib.use" for c in _calls(path)) or "matplotlib.pyplot" in text:
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def test_only_the_helper_renames_files_into_place():
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in RENAMES_ALLOWED:
            continue
        if any(c in ("os.replace", "os.rename") or c.endswith(".replace") and "tmp" in c for c in _calls(path)):
            offenders.append(rel)
    assert offenders == []


def test_run_plots_leave_the_users_backend_and_pyplot_alone(tmp_path):
    from gradwise.report import plot_history

    backend = matplotlib.get_backend()
    records = [{"type": "epoch", "epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e} for e in (1, 2, 3)]
    records += [{"type": "step", "step": s, "loss": 1.0 / s, "lr": 0.1 / s} for s in (1, 2, 3)]
    written = plot_history(records, tmp_path)
    assert {p.name for p in written} == {"loss.png", "step_loss.png", "lr.png"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    assert matplotlib.get_backend() == backend
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
