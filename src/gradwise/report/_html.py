"""A self-contained HTML report: plots embedded as base64 PNGs, tables inline."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradwise._io import write_text
from gradwise.report._plots import plot_history, read_metrics

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:1em}.plots figure{margin:0}
.plots img{max-width:520px;border:1px solid #eee}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.85em}
.event{color:#a00}
"""


@dataclass
class Section:
    """One block of a report: a title, optional text, tables and PNG files."""

    title: str
    text: str = ""
    tables: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    pre: str = ""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(caption: str, rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<tr>{head}</tr>{body}</table>"


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    name = html.escape(Path(path).stem)
    return (
        f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
        f"<figcaption>{name}</figcaption></figure>"
    )


def render_html(title: str, sections: Sequence[Section]) -> str:
    """Render sections into one HTML page with every image inlined."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        if sec.text:
            parts.append(f"<p>{html.escape(sec.text)}</p>")
        for caption, rows in sec.tables:
            parts.append(_table(caption, rows))
        if sec.images:
            parts.append('<div class="plots">' + "".join(_img(p) for p in sec.images) + "</div>")
        if sec.pre:
            parts.append(f"<pre>{html.escape(sec.pre)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    run_dir: str | Path,
    *,
    title: str | None = None,
    extra: Sequence[Section] = (),
) -> Path:
    """Write ``plots/*.png`` and ``report.html`` for a run directory.

    Reads ``metrics.jsonl``, ``results.json`` (final test metrics, optional)
    and ``config.yaml`` (optional) from ``run_dir``; ``extra`` sections are
    appended (a capability adds its own plots this way). Returns the report path.
    """
    run_dir = Path(run_dir)
    records = read_metrics(run_dir / "metrics.jsonl")
    images = plot_history(records, run_dir / "plots")
    sections: list[Section] = []
    results_path = run_dir / "results.json"
    if results_path.exists():
        results = json.loads(results_path.read_text())
        rows = [{"split": k, **v} for k, v in results.items() if isinstance(v, dict)]
        sections.append(Section("Results", tables=[("final metrics", rows)]))
    epochs = [r for r in records if r.get("type") == "epoch"]
    events = [r for r in records if r.get("type") == "event"]
    sections.append(
        Section(
            "Training curves",
            text=(
                "An epoch is one pass over the training data; an iteration is one "
                "optimizer step. Dashed red lines mark events."
            ),
            images=images,
        )
    )
    if events:
        rows = [{k: v for k, v in e.items() if k != "type"} for e in events]
        sections.append(Section("Events", tables=[("", rows)]))
    if epochs:
        rows = [{k: v for k, v in e.items() if k != "type"} for e in epochs]
        sections.append(Section("Per-epoch metrics", tables=[("", rows)]))
    sections.extend(extra)
    cfg = run_dir / "config.yaml"
    if cfg.exists():
        sections.append(Section("Resolved config", pre=cfg.read_text()))
    page = render_html(title or f"gradwise run: {run_dir.name}", sections)
    return write_text(run_dir / "report.html", page)
