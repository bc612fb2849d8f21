"""Plots of a run's metrics: train vs val per epoch, step loss, learning rate.

Each is a Figure on its own Agg canvas saved through :func:`gradwise._io.save_png`
(atomic, no ``matplotlib.use``, pyplot's global state untouched).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradwise._io import new_figure, save_png


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl`` records; a torn last line (a killed run) is skipped."""
    records = []
    path = Path(path)
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _metric_names(epochs: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for rec in epochs:
        for key in rec:
            for prefix in ("train_", "val_"):
                if key.startswith(prefix):
                    name = key[len(prefix) :]
                    if name not in names:
                        names.append(name)
    # loss first, then the rest in first-seen order
    return sorted(names, key=lambda n: n != "loss")


def _kept_epoch(epochs: list[dict[str, Any]], events: list[dict[str, Any]]) -> tuple[int, str] | None:
    """The epoch whose weights the model ends with, and a label for it.

    The last ``restore_best`` / ``best_weights`` / ``early_stop`` event names
    it; without one, the epoch of the lowest validation loss is marked as the best.
    """
    for ev in reversed(events):
        kind = ev.get("kind")
        if kind in ("restore_best", "early_stop") and ev.get("best_epoch") is not None:
            verb = "restored" if kind == "restore_best" else "best"
            return int(ev["best_epoch"]), f"{verb}: epoch {ev['best_epoch']}"
        if kind == "best_weights" and ev.get("epoch") is not None:
            verb = "restored" if ev.get("restored") else "kept"
            return int(ev["epoch"]), f"{verb}: epoch {ev['epoch']} (best {ev.get('monitor', '')})"
    vals = [(r["val_loss"], r["epoch"]) for r in epochs
            if isinstance(r.get("val_loss"), (int, float)) and r["val_loss"] == r["val_loss"]]  # fmt: skip
    if len(vals) > 1:
        return min(vals)[1], f"best val_loss: epoch {min(vals)[1]}"
    return None


def _mark_kept_epoch(ax: Any, epochs: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """A labelled line at the end of the kept (best or restored) epoch; rescues as dots."""
    kept = _kept_epoch(epochs, events)
    ends = {r["epoch"]: r["step"] for r in epochs if "step" in r}
    if kept is not None and kept[0] in ends:
        ax.axvline(ends[kept[0]], color="tab:green", lw=1.5, label=kept[1])
    rescues = [e["step"] for e in events if e.get("kind") == "divergence_rescue" and "step" in e]
    if rescues:
        ax.scatter(rescues, [ax.get_ylim()[1]] * len(rescues), marker="v", color="tab:red",
                   zorder=3, label=f"guard rollback ({len(rescues)})")  # fmt: skip
    if kept is not None or rescues:
        ax.legend(loc="upper right")


def plot_curves(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    *,
    title: str = "",
    xlabel: str = "epoch",
    ylabel: str = "",
    logy: bool = False,
    logx: bool = False,
) -> Path:
    """Draw named ``(x, y)`` curves on one axis and save a PNG."""
    fig = new_figure(8, 4.5)
    ax = fig.subplots()
    for label, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), marker="o" if len(xs) <= 30 else None, ms=3, label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    return save_png(fig, path)


def plot_history(records: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write one PNG per metric (train vs val per epoch), the step loss and the lr.

    Returns the paths written. The step-loss plot marks the epoch whose
    weights the model ends with (restored or best) and the guard's rollbacks.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    epochs = [r for r in records if r.get("type") == "epoch"]
    steps = [r for r in records if r.get("type") == "step"]
    events = [r for r in records if r.get("type") == "event"]
    written: list[Path] = []
    for name in _metric_names(epochs):
        series = {}
        for prefix in ("train", "val"):
            key = f"{prefix}_{name}"
            pts = [(r["epoch"], r[key]) for r in epochs if isinstance(r.get(key), (int, float))]
            if pts:
                series[prefix] = ([p[0] for p in pts], [p[1] for p in pts])
        if not series:
            continue
        fig_path = out_dir / f"{name}.png"
        plot_curves(series, fig_path, title=f"{name} per epoch", ylabel=name)
        written.append(fig_path)
    if steps:
        pts = [(r["step"], r["loss"]) for r in steps if isinstance(r.get("loss"), (int, float))]
        if pts:
            fig = new_figure(8, 4.5)
            ax = fig.subplots()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1)
            _mark_kept_epoch(ax, epochs, events)
            ax.set_title("training loss per iteration (optimizer step)")
            ax.set_xlabel("iteration")
            ax.set_ylabel("loss")
            ax.grid(alpha=0.3)
            written.append(save_png(fig, out_dir / "step_loss.png"))
        lr_pts = [(r["step"], r["lr"]) for r in steps if isinstance(r.get("lr"), (int, float))]
        if len({p[1] for p in lr_pts}) > 1:
            plot_curves(
                {"lr": ([p[0] for p in lr_pts], [p[1] for p in lr_pts])},
                out_dir / "lr.png",
                title="learning rate",
                xlabel="iteration",
                ylabel="lr",
                logy=True,
            )
            written.append(out_dir / "lr.png")
    return written
