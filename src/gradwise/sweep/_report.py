"""The sweep report: trial table, overlaid curves, heatmap of a 2-parameter grid, best config.

Everything is drawn from the study alone (its trials' user attributes), so a
report can be written on any machine that reaches a shared database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from gradwise._io import new_figure, save_png, write_text
from gradwise.config import parse_config
from gradwise.report import Section, render_html
from gradwise.sweep._config import SweepConfig, trial_raw
from gradwise.sweep._result import SweepResult
from gradwise.sweep._space import Space


def _colormap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name]


def save_figure(fig: Any, path: Path) -> Path:
    """Save a figure atomically: workers finishing together write the same report."""
    return save_png(fig, path, dpi=DPI, tight=False)


def _subplots(width: float, height: float, *grid: int, constrained: bool = False, **kw: Any) -> tuple[Any, Any]:
    # A Figure on its own Agg canvas (gradwise._io.new_figure): pyplot is never touched.
    fig = new_figure(width, height, dpi=DPI)
    if constrained:
        fig.set_layout_engine("constrained")
    return fig, fig.subplots(*grid, **kw)


def label(value: Any) -> str:
    """A short text for a parameter value in tables and on axes."""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def info(trial: Any) -> dict[str, Any]:
    """What the objective stored about a trial's run (empty while it runs)."""
    return trial.user_attrs.get("run", {})


def finished_trials(study: Any) -> list[Any]:
    """The study's trials that count (a surplus trial of a race for the last slot does not)."""
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]


def trial_rows(study: Any, cfg: SweepConfig) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, parameter values, epochs, seconds."""
    space, metric = Space(cfg.sweep), cfg.sweep.metric
    rows = []
    for t in finished_trials(study):
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name.lower()}
        run = info(t)
        if run.get("diverged"):
            row["state"] += " (diverged)"
        row[metric] = t.value if t.state.name == "COMPLETE" else None
        for k, v in space.values_of(t.params).items():
            row[k] = label(v)
        row["epochs"] = len(run.get("history", []))
        if "sparsity" in run:
            row["zero weights"] = run["sparsity"]
        row["seconds"] = run.get("seconds")
        rows.append(row)
    return rows


def _best(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def best_config(study: Any, cfg: SweepConfig) -> dict[str, Any] | None:
    """The full run config of the best trial, as written (runnable with ``gradwise train``)."""
    best = _best(study)
    if best is None:
        return None
    raw = trial_raw(cfg.base(), Space(cfg.sweep).values_of(best.params))
    raw["name"] = f"{cfg.name}-best"
    return parse_config(raw).model_dump(mode="json", exclude_unset=True)


# -- plots -----------------------------------------------------------------------------------

LEGEND_PT = 8  # legend and tick text of the sweep plots, in points
DPI = 110  # with the figure sizes below: plots 880-1100 px wide


def trial_color(study: Any, number: int) -> Any:
    """The colour of trial ``number`` in every plot of the report (keyed by number, not order)."""
    n = max(1, len(study.get_trials(deepcopy=False)))
    if n <= 10:
        return _colormap("tab10")(number % 10)
    if n <= 20:
        return _colormap("tab20")(number % 20)
    return _colormap("viridis")(number / (n - 1))


def _legend(ax: Any, n: int) -> None:
    """A legend beside the axes (it never hides a curve), in a readable size."""
    if n <= 20:
        ax.legend(fontsize=LEGEND_PT, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0.0, frameon=False)  # fmt: skip


def plot_curves(study: Any, cfg: SweepConfig, path: Path) -> Path | None:
    """The metric per epoch of every trial on one axis; the best bold, pruned ones dashed."""
    metric, space = cfg.sweep.metric, Space(cfg.sweep)
    best = _best(study)
    trials = [t for t in finished_trials(study) if info(t).get("history")]
    if not trials:
        return None
    fig, ax = _subplots(10, 4.5, constrained=True)
    for t in trials:
        hist = info(t)["history"]
        xs = [r["epoch"] for r in hist if metric in r]
        ys = [r[metric] for r in hist if metric in r]
        is_best = best is not None and t.number == best.number
        params = ", ".join(f"{k}={label(v)}" for k, v in space.values_of(t.params).items())
        ax.plot(
            xs, ys,
            color=trial_color(study, t.number),
            lw=3.0 if is_best else 1.2,
            zorder=3 if is_best else 2,
            ls="--" if t.state.name == "PRUNED" else "-",
            label=f"#{t.number} {params}" + (" (best)" if is_best else ""),
        )  # fmt: skip
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch, one line per trial (bold: best, dashed: pruned)")
    ax.grid(alpha=0.3)
    _legend(ax, len(trials))
    return save_figure(fig, path)


def grid_matrix(
    study: Any, cfg: SweepConfig, x: str, y: str
) -> tuple[list[list[float]], list[str], list[str]]:
    """Mean value of complete trials at each (y, x) pair of listed values; NaN where none."""
    space = Space(cfg.sweep)
    xs = [label(v) for v in cfg.sweep.params[x].values or []]
    ys = [label(v) for v in cfg.sweep.params[y].values or []]
    cells: dict[tuple[str, str], list[float]] = {}
    for t in finished_trials(study):
        if t.state.name != "COMPLETE" or t.value is None:
            continue
        vals = space.values_of(t.params)
        cells.setdefault((label(vals[y]), label(vals[x])), []).append(t.value)
    grid = [
        [sum(cells[(r, c)]) / len(cells[(r, c)]) if (r, c) in cells else math.nan for c in xs]
        for r in ys
    ]
    return grid, xs, ys


def plot_heatmap(
    grid: Sequence[Sequence[float]],
    xlabels: Sequence[str],
    ylabels: Sequence[str],
    path: Path | None = None,
    *,
    xname: str,
    yname: str,
    title: str,
    maximize: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    ax: Any = None,
) -> Path:
    """A heatmap of a 2-parameter grid, cells annotated, the best one boxed.

    Bright is good in both directions (the colour map is reversed for a
    metric to minimise). Pass ``ax`` to draw into a figure of your own (then
    nothing is saved and ``path`` may be None).
    """
    import numpy as np
    from matplotlib.patches import Rectangle

    own = ax is None
    if own:
        # at least 8 in (880 px): a small grid's cells are large, not its picture small
        fig, ax = _subplots(max(8.0, 1.2 + 0.9 * len(xlabels)), max(4.0, 1.2 + 0.6 * len(ylabels)))
    data = np.array(grid, dtype=float)
    finite = data[np.isfinite(data)]
    lo = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
    hi = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
    cmap = _colormap("viridis" if maximize else "viridis_r").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=lo, vmax=hi, origin="lower",
                   aspect="auto")  # fmt: skip
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            text = "–" if not np.isfinite(v) else f"{v:.3g}"
            pos = (v - lo) / ((hi - lo) or 1.0) if np.isfinite(v) else 1.0
            dark = pos < 0.5 if maximize else pos > 0.5  # the dark end of (reversed) viridis
            ax.text(j, i, text, ha="center", va="center", fontsize=LEGEND_PT,
                    color="white" if dark else "black")  # fmt: skip
    if finite.size:
        flat = np.where(np.isfinite(data), data, -np.inf if maximize else np.inf)
        i, j = np.unravel_index(np.argmax(flat) if maximize else np.argmin(flat), data.shape)
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
    ax.set_xticks(range(len(xlabels)), list(xlabels), fontsize=LEGEND_PT, rotation=45)
    ax.set_yticks(range(len(ylabels)), list(ylabels), fontsize=LEGEND_PT)
    ax.set_xlabel(xname)
    ax.set_ylabel(yname)
    ax.set_title(title, fontsize=9)
    if own:
        fig.colorbar(im, ax=ax, fraction=0.05)
        fig.tight_layout()
        if path is None:
            raise ValueError("plot_heatmap: give a path to save to, or an ax to draw into")
        save_figure(fig, path)
    return path


def plot_ranges(study: Any, cfg: SweepConfig, path: Path) -> Path | None:
    """The value of each complete trial against each range parameter (random/TPE sweeps)."""
    ranged = [k for k, p in cfg.sweep.params.items() if p.values is None]
    done = [t for t in finished_trials(study) if t.state.name == "COMPLETE"]
    done = [t for t in done if t.value is not None and math.isfinite(t.value)]
    if not ranged or not done:
        return None
    fig, axes = _subplots(max(8.0, 3.4 * len(ranged)), 3.6, 1, len(ranged), squeeze=False)
    colors = [trial_color(study, t.number) for t in done]
    for ax, name in zip(axes[0], ranged):
        ax.scatter([t.params[name] for t in done], [t.value for t in done], s=18, c=colors)
        if cfg.sweep.params[name].log:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel(cfg.sweep.metric)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_depth(study: Any, cfg: SweepConfig, path: Path) -> Path | None:
    """Gradient norm against depth, one colour per trial: first epoch dotted, last solid."""
    trials = [t for t in finished_trials(study) if info(t).get("diagnostics")]
    if not trials:
        return None
    space = Space(cfg.sweep)
    fig, ax = _subplots(10, 4.5, constrained=True)
    for t in trials:
        per_epoch = info(t)["diagnostics"]["grad_norm"]
        params = ", ".join(label(v) for v in space.values_of(t.params).values())
        for norms, style, name in ((per_epoch[0], ":", None), (per_epoch[-1], "-", params)):
            ys = [v if v > 0 and math.isfinite(v) else math.nan for v in norms]
            ax.plot(range(len(ys)), ys, ls=style, marker="o", ms=3,
                    color=trial_color(study, t.number),
                    label=None if name is None else f"#{t.number} {name}")  # fmt: skip
    layers = info(trials[0])["diagnostics"]["layers"]
    ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=LEGEND_PT)
    ax.set_yscale("log")
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel("gradient norm, epoch mean")
    ax.set_title("gradient norm over depth: first epoch dotted, last epoch solid", fontsize=10)
    ax.grid(alpha=0.3)
    _legend(ax, len(trials))
    return save_figure(fig, path)


# -- the page -----------------------------------------------------------------------------


def write_sweep_report(study: Any, cfg: SweepConfig, run_dir: Path) -> Path:
    """Write ``plots/*.png``, ``best_config.yaml`` and ``report.html`` into ``run_dir``."""
    run_dir = Path(run_dir)
    plots = run_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    spec = cfg.sweep
    rows = trial_rows(study, cfg)
    best = _best(study)
    m = spec.metric
    drawn = [(plot_curves(study, cfg, plots / "curves.png"), f"{m} per epoch, one line per trial")]
    value_params = [k for k, p in spec.params.items() if p.values is not None]
    if len(spec.params) == 2 and len(value_params) == 2:
        x, y = value_params
        grid, xs, ys = grid_matrix(study, cfg, x, y)
        heat = plot_heatmap(grid, xs, ys, plots / "heatmap.png", xname=x, yname=y,
                            title=f"{m} (mean over trials)", maximize=spec.direction == "maximize")
        drawn.append((heat, f"{m} over {x} and {y} (best boxed)"))  # fmt: skip
    drawn += [(plot_ranges(study, cfg, plots / "params.png"), f"{m} against each parameter"),
              (plot_depth(study, cfg, plots / "grad_norm_depth.png"),
               "Gradient norm over depth, one colour per trial")]  # fmt: skip
    # a trial has one colour in every plot (the colour of its line in the first)
    images: list[Any] = [(p, text) for p, text in drawn if p]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    summary = (
        f"{spec.method} search over {', '.join(spec.params)}; objective: {spec.direction} "
        f"{spec.metric} of the final model. Trials: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + ". Each trial's records are in trials/trial-NNNN/ (metrics.jsonl, config.yaml)."
    )
    sections = [Section("Sweep", text=summary)]
    best_raw = best_config(study, cfg)
    if best is not None and best_raw is not None:
        write_text(run_dir / "best_config.yaml", yaml.safe_dump(best_raw, sort_keys=False))
        top = {"trial": best.number, spec.metric: best.value}
        top.update({k: label(v) for k, v in Space(spec).values_of(best.params).items()})
        sections.append(
            Section(
                "Best trial", tables=[("", [top])], pre=yaml.safe_dump(best_raw, sort_keys=False)
            )  # fmt: skip
        )
    sections.append(Section("Plots", images=images))
    ordered = sorted(
        rows,
        key=lambda r: (r[spec.metric] is None, -(r[spec.metric] or 0.0)
                       if spec.direction == "maximize" else (r[spec.metric] or 0.0)),
    )  # fmt: skip
    sections.append(Section("Trials", tables=[("best first", ordered)]))
    out = run_dir / "report.html"
    write_text(out, render_html(f"gradwise sweep: {cfg.name}", sections))
    return out


def summarize(
    study: Any, cfg: SweepConfig, run_dir: Path, storage: str, ran: int, report: Path
) -> SweepResult:
    """The :class:`SweepResult` of a study."""
    best = _best(study)
    return SweepResult(
        run_dir=Path(run_dir),
        study_name=cfg.name,
        storage=storage,
        metric=cfg.sweep.metric,
        direction=cfg.sweep.direction,
        best_trial=None if best is None else best.number,
        best_value=None if best is None else best.value,
        best_params={} if best is None else Space(cfg.sweep).values_of(best.params),
        best_config=best_config(study, cfg),
        trials=trial_rows(study, cfg),
        ran=ran,
        report=report,
    )
