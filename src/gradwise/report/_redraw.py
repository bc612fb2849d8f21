"""Re-draw a run's ``report.html`` later (``gradwise report RUN``), whatever kind of run made it.

A run with training curves (``metrics.jsonl``) is re-drawn by
:func:`~gradwise.report.write_report`. A run whose page is its own sections
and pictures (a ``gradwise linear`` fit) writes it with :func:`write_page`,
which keeps the sections in ``report.json`` so that the re-drawn page is the
same page. A run from before ``report.json`` that holds ``results.json`` gets
a page of its results, its ``plots/*.png`` and its config.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from gradwise._io import write_text
from gradwise.errors import ConfigError
from gradwise.report._html import (
    SAVED,
    Section,
    _load_saved,
    _results_tables,
    _section_from_json,
    _section_to_json,
    render_html,
    write_report,
)

PAGE = "page"  # report.json's kind for a page written by write_page


def write_page(run_dir: str | Path, title: str, sections: Sequence[Section]) -> Path:
    """Write ``run_dir/report.html`` from ``sections`` and keep them for a re-draw.

    For a run without training curves; the sections (text, tables, picture
    paths, config) go to ``run_dir/report.json``, so ``gradwise report RUN``
    re-draws this page from the pictures on disk. Returns the report path.

    Example:
        >>> # write_page("runs/lasso", "gradwise linear: lasso", [Section("Model", text="...")])
    """
    run_dir = Path(run_dir)
    record = {"kind": PAGE, "title": title, "sections": [_section_to_json(s, run_dir) for s in sections]}
    write_text(run_dir / SAVED, json.dumps(record, indent=1))
    return write_text(run_dir / "report.html", render_html(title, sections))


def _results_page(run_dir: Path) -> list[Section]:
    try:
        results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{run_dir / 'results.json'}: not valid JSON ({exc})") from None
    sections = []
    if isinstance(results, dict):
        sections.append(Section("Results", tables=_results_tables(results)))
    pngs = sorted((run_dir / "plots").glob("*.png"), key=lambda p: (p.stat().st_mtime, p.name))
    plots: list[Path | str | tuple[Path | str, str]] = list(pngs)
    if plots:
        sections.append(Section("Pictures", text="Click a plot to see it at full size.", images=plots))
    cfg = run_dir / "config.yaml"
    if cfg.exists():
        sections.append(Section("Resolved config", pre=cfg.read_text(encoding="utf-8")))
    return sections


def redraw(run_dir: str | Path) -> Path:
    """Re-draw ``run_dir/report.html`` from what the run wrote; returns its path.

    Raises :class:`~gradwise.errors.ConfigError` when ``run_dir`` holds no
    run (no ``metrics.jsonl``, page ``report.json`` or ``results.json``).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        what = "a file, not a run directory" if run_dir.exists() else "no such run directory"
        raise ConfigError(f"{run_dir}: {what}")
    if (run_dir / "metrics.jsonl").exists():
        return write_report(run_dir)
    saved = _load_saved(run_dir)
    if saved is not None and saved.get("kind") == PAGE:
        sections = [_section_from_json(s, run_dir) for s in saved.get("sections", [])]
        return write_text(run_dir / "report.html", render_html(saved.get("title") or run_dir.name, sections))
    if (run_dir / "results.json").exists():
        return write_text(run_dir / "report.html", render_html(f"gradwise run: {run_dir.name}", _results_page(run_dir)))
    raise ConfigError(
        f"{run_dir} is not a run directory: it has no metrics.jsonl (a training run), "
        "report.json or results.json (a linear fit)"
    )
