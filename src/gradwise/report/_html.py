"""A self-contained HTML report: plots embedded as base64 PNGs, tables inline.

Plots are shown at their own size up to the page's width, and a click opens
any of them at full size (a wide chart stays readable). Tables sit in a
scrolling box and drop columns that are empty in every row, so no page is
wider than the window. :func:`write_report` stores the sections a run added
(``report.json``) so that re-drawing the page later (``gradwise report``)
keeps them.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradwise._io import write_text
from gradwise.report._plots import plot_history, read_metrics

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.table{max-width:100%;overflow-x:auto;margin:.5em 0}
table{border-collapse:collapse;font-size:.9em}caption{text-align:left;color:#555}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right;vertical-align:top}
th{background:#f4f4f4}td{max-width:36em;overflow-wrap:break-word}
td:first-child,th:first-child{text-align:left}td.text{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:1em}.plots figure{margin:0;max-width:100%}
.plots img{max-width:100%;height:auto;border:1px solid #eee;cursor:zoom-in}
figcaption{font-size:.9em;color:#444}
#zoom{position:fixed;inset:0;background:rgba(0,0,0,.75);overflow:auto;z-index:10;cursor:zoom-out}
#zoom img{display:block;margin:1em auto;max-width:none;background:#fff}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.85em}
"""

# A click on a plot shows it at its natural size in an overlay; a click closes it.
# (the overlay's <img> is made on the first click: every <img> of the page is a plot)
_ZOOM = """<div id="zoom" hidden></div>
<script>
document.addEventListener('click', function (e) {
  var z = document.getElementById('zoom');
  if (e.target.matches('.plots img')) {
    var i = z.querySelector('img') || z.appendChild(document.createElement('img'));
    i.src = e.target.src; i.alt = e.target.alt; z.hidden = false;
  } else if (!z.hidden) { z.hidden = true; }
});
</script>"""

#: Captions of the plots gradwise writes, by file stem.
CAPTIONS = {
    "step_loss": "Training loss per step",
    "loss": "Loss per epoch (train and validation)",
    "accuracy": "Accuracy per epoch (train and validation)",
    "lr": "Learning rate per step",
    "lr_find": "Learning-rate range test (lr_find)",
    "lr_finder": "Learning-rate range test (lr_find)",
    "lr_loss_curves": "Training loss at four learning rates",
    "curves": "The metric per epoch, one line per trial",
    "heatmap": "The metric over the two-parameter grid",
    "params": "The metric against each searched parameter",
    "grad_norm_depth": "Gradient norm over depth",
    "grad_norm_time": "Gradient norm per layer over training",
    "update_ratio": "Update-to-weight ratio per layer",
    "activation_heatmap": "Activation statistics per layer",
    "coefficients": "Coefficients of lasso, ridge and elastic net",
    "path": "Regularization path: coefficients against lam",
    "cv": "Cross-validated error against lam",
    "one_cycle": "One-cycle schedule",
    "train_val_gap": "Gap between train and validation accuracy",
    "sparsity_vs_accuracy": "Share of zero weights against accuracy",
    "weight_decay_heatmaps": "Validation loss over learning rate and weight decay",
    "transfer": "Digits 5-9: test accuracy of four ways to fine-tune",
    "minilm": "MiniLM: test accuracy, head-only against gradual unfreezing",
    "lora": "MiniLM: test accuracy, LoRA against a full fine-tune",
    "lora_val_accuracy": "Validation accuracy per epoch, LoRA and full fine-tune",
    "lasso_cv": "Lasso: cross-validated error against lam",
    "diabetes_path": "Lasso path on diabetes: coefficients against lam",
}


def caption(path: str | Path) -> str:
    """The caption of a plot file: a known one by its stem, else the stem in words.

    >>> caption("plots/step_loss.png")
    'Training loss per step'
    >>> caption("val_f1.png")
    'Val f1'
    """
    stem = Path(path).stem
    if stem in CAPTIONS:
        return CAPTIONS[stem]
    words = stem.replace("_", " ").replace("-", " ").strip()
    return (words[:1].upper() + words[1:]) or stem


Image = Path | str | tuple[Path | str, str]


@dataclass
class Section:
    """One block of a report: a title, optional text, tables and PNG files.

    ``tables`` holds ``(caption, rows)`` pairs, each row a dict of column to
    value; ``images`` holds PNG paths or ``(path, caption)`` pairs (a bare path
    gets :func:`caption` of its name); ``pre`` is shown as preformatted text.
    """

    title: str
    text: str = ""
    tables: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    pre: str = ""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _table(title: str, rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    # a column empty in every row says nothing
    cols = [c for c in cols if not all(_empty(r.get(c)) for r in rows)]

    def cell(v: Any) -> str:
        cls = ' class="text"' if isinstance(v, str) and len(v) > 24 else ""
        return f"<td{cls}>{'' if v is None else _fmt(v)}</td>"

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(cell(r.get(c)) for c in cols) + "</tr>" for r in rows)
    cap = f"<caption>{html.escape(title)}</caption>" if title else ""
    return f'<div class="table"><table>{cap}<tr>{head}</tr>{body}</table></div>'


def _img(image: Image) -> str:
    path, text = image if isinstance(image, tuple) else (image, caption(image))
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    name, text = html.escape(Path(path).stem), html.escape(text)
    return (
        f'<figure><img alt="{text}" title="{text} (click to enlarge)" data-plot="{name}" '
        f'src="data:image/png;base64,{data}"><figcaption>{text}</figcaption></figure>'
    )


def render_html(title: str, sections: Sequence[Section]) -> str:
    """Render sections into one HTML page with every image inlined.

    Example:
        >>> page = render_html("t", [Section("Results", tables=[("", [{"a": 1, "b": None}])])])
        >>> "<th>a</th>" in page and "<th>b</th>" not in page
        True
    """
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        if sec.text:
            parts.append(f"<p>{html.escape(sec.text)}</p>")
        for cap, rows in sec.tables:
            parts.append(_table(cap, rows))
        if sec.images:
            parts.append('<div class="plots">' + "".join(_img(p) for p in sec.images) + "</div>")
        if sec.pre:
            parts.append(f"<pre>{html.escape(sec.pre)}</pre>")
    parts.append(_ZOOM)
    parts.append("</body></html>")
    return "\n".join(parts)


# -- what a run added to its report, kept for a re-draw --------------------------------------

SAVED = "report.json"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)  # numpy and torch scalars
    if callable(item):
        try:
            return _plain(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def _section_to_json(sec: Section, run_dir: Path) -> dict[str, Any]:
    images = []
    for image in sec.images:
        path, text = image if isinstance(image, tuple) else (image, None)
        path = Path(path).resolve()
        try:
            path = path.relative_to(run_dir.resolve())
        except ValueError:  # outside the run dir: kept by its absolute path
            pass
        images.append([str(path), text])
    tables = [[cap, [{str(k): _plain(v) for k, v in row.items()} for row in rows]]
              for cap, rows in sec.tables]  # fmt: skip
    return {"title": sec.title, "text": sec.text, "tables": tables, "images": images,
            "pre": sec.pre}  # fmt: skip


def _section_from_json(raw: dict[str, Any], run_dir: Path) -> Section:
    images: list[Image] = []
    for path, text in raw.get("images", []):
        full = run_dir / path  # an absolute path stays absolute
        if full.exists():
            images.append(full if text is None else (full, text))
    tables = [(cap, rows) for cap, rows in raw.get("tables", [])]
    return Section(raw["title"], raw.get("text", ""), tables, images, raw.get("pre", ""))


def _load_saved(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / SAVED
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # a damaged file: re-draw the generic page
    return raw if isinstance(raw, dict) else None


# -- the run page -----------------------------------------------------------------------------


def _results_tables(results: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """One table per group of results entries with the same keys (splits share one).

    An entry alone in its group is shown as name/value rows, so unrelated
    records (data counts, parameter counts) never widen the metrics table.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, value in results.items():
        if isinstance(value, dict):
            groups.setdefault(tuple(value), []).append(name)
    tables = []
    for keys, names in groups.items():
        if len(names) > 1:
            rows = [{"split": n, **results[n]} for n in names]
            tables.append(("final metrics", rows))
        else:
            (name,) = names
            tables.append((name, [{"": k, "value": results[name][k]} for k in keys]))
    scalars = [{"": k, "value": v} for k, v in results.items() if not isinstance(v, dict)]
    if scalars:
        tables.append(("", scalars))
    return tables


def _events_table(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event rows; the checkpoints fold into one row (they are many and alike)."""
    rows, saved = [], []
    for e in events:
        if e.get("kind") == "checkpoint":
            saved.append(e.get("epoch"))
            continue
        rows.append({k: v for k, v in e.items() if k not in ("type", "path")})
    if saved:
        where = ", ".join(str(s) for s in saved) if len(saved) <= 6 else (
            f"{saved[0]}, {saved[1]}, ..., {saved[-1]}")  # fmt: skip
        rows.append({"kind": "checkpoint", "message": f"{len(saved)} saved (epochs {where})"})
    return rows


def write_report(
    run_dir: str | Path,
    *,
    title: str | None = None,
    extra: Sequence[Section] = (),
    lead: Sequence[Section] = (),
) -> Path:
    """Write ``plots/*.png`` and ``report.html`` for a run directory.

    Reads ``metrics.jsonl``, ``results.json`` (final test metrics, optional)
    and ``config.yaml`` (optional) from ``run_dir``. A capability adds its own
    sections: ``lead`` ones open the page (a demo's point), ``extra`` ones
    follow the training curves. The title and these sections are stored in
    ``run_dir/report.json``; a later call with none of them (``gradwise
    report RUN``) re-uses them, so a re-drawn page keeps what the run wrote.
    The long per-epoch table comes last. Returns the report path.

    Example:
        >>> # write_report("runs/a", lead=[Section("Why", text="...")])
    """
    run_dir = Path(run_dir)
    if title is None and not extra and not lead:
        saved = _load_saved(run_dir) or {}
        title = saved.get("title")
        lead = [_section_from_json(s, run_dir) for s in saved.get("lead", [])]
        extra = [_section_from_json(s, run_dir) for s in saved.get("extra", [])]
    else:
        record = {
            "title": title,
            "lead": [_section_to_json(s, run_dir) for s in lead],
            "extra": [_section_to_json(s, run_dir) for s in extra],
        }
        write_text(run_dir / SAVED, json.dumps(record, indent=1))
    records = read_metrics(run_dir / "metrics.jsonl")
    images = plot_history(records, run_dir / "plots")
    sections: list[Section] = list(lead)
    results_path = run_dir / "results.json"
    if results_path.exists():
        results = json.loads(results_path.read_text())
        if isinstance(results, dict):
            sections.append(Section("Results", tables=_results_tables(results)))
    epochs = [r for r in records if r.get("type") == "epoch"]
    events = [r for r in records if r.get("type") == "event"]
    sections.append(
        Section(
            "Training curves",
            text=(
                "An epoch is one pass over the training data; an iteration is one "
                "optimizer step. The step-loss plot marks the epoch whose weights the "
                "model ends with. Click a plot to see it at full size."
            ),
            images=list(images),
        )
    )
    if events:
        sections.append(Section("Events", tables=[("", _events_table(events))]))
    sections.extend(extra)
    cfg = run_dir / "config.yaml"
    if cfg.exists():
        sections.append(Section("Resolved config", pre=cfg.read_text()))
    if epochs:
        rows = [{k: v for k, v in e.items() if k != "type"} for e in epochs]
        sections.append(Section("Per-epoch metrics", tables=[("", rows)]))
    page = render_html(title or f"gradwise run: {run_dir.name}", sections)
    return write_text(run_dir / "report.html", page)
