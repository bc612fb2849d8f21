"""Plots and the report section of :class:`GradientDiagnostics` (drawn after training)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gradwise.train._io import new_figure, save_png


def measure(kind: str) -> str:
    """What is measured on an activation of ``kind``: ``dead`` (ReLU) or ``saturated``."""
    return "dead" if kind == "relu" else "saturated"


# ``diag`` below is a GradientDiagnostics; this module does not import it, so
# that the callback module imports this one and not the other way round.


def report_section(diag: Any) -> Any:
    """A :class:`gradwise.report.Section`: the last epoch's numbers, warnings, plots."""
    from gradwise.report import Section

    last = diag.epochs[-1] if diag.epochs else {}
    layers = [
        {"layer": n, "grad norm": last.get("grad_norm", {}).get(n, float("nan")),
         "update/weight": last.get("update_ratio", {}).get(n, float("nan"))}
        for n in diag.layer_names
    ]  # fmt: skip
    acts = []
    for n in diag.activation_names:
        kind = diag.activation_kinds[n]
        key = measure(kind)
        acts.append({"activation layer": n, "kind": kind, "measure": key,
                     "fraction": last.get(key, {}).get(n, float("nan"))})  # fmt: skip
    tables = [(f"epoch {last.get('epoch', '-')}, layers input to output", layers)]
    if acts:
        tables.append(("dead ReLU units / saturated sigmoid-tanh units", acts))
    if diag.warnings:
        tables.append(("warnings", [{k: v for k, v in w.items() if k != "type"}
                                    for w in diag.warnings]))  # fmt: skip
    text = (
        f"Measured on {'every' if diag.every == 1 else f'one in {diag.every}'} optimizer "
        "steps. Gradient norm: ||∂L/∂θ_l|| of each "
        "layer's parameters; update/weight: ||Δθ_l||/||θ_l|| of the step taken. A layer whose "
        f"gradient norm is below {diag.vanish:g}× (or above {diag.explode:g}×) the largest "
        "one between it and the output is flagged as vanishing (exploding). Dead: ReLU units "
        "silent on every training example of the epoch; saturated: sigmoid/tanh derivative (normalised to 1 at "
        f"its peak) below {diag.saturation:g}."
    )
    return Section("Gradient diagnostics", text=text, tables=tables, images=list(diag.plots))


# -- plots ------------------------------------------------------------------------------


def plot_all(diag: Any, out_dir: Path) -> list[Path]:
    from matplotlib import colormaps

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    names = diag.layer_names

    def subplots(figsize: tuple[float, float]) -> tuple[Any, Any]:
        fig = new_figure(*figsize)
        return fig, fig.subplots()

    def save(fig: Any, name: str) -> None:
        written.append(save_png(fig, out_dir / name))

    def positive(values: list[float]) -> list[float]:
        # log axes cannot show 0 or inf; leave a gap instead
        return [v if math.isfinite(v) and v > 0 else float("nan") for v in values]

    if diag.epochs and names:
        fig, ax = subplots(figsize=(6.4, 3.8))
        n = len(diag.epochs)
        picks = sorted({round(i * (n - 1) / max(1, min(n, 8) - 1)) for i in range(min(n, 8))})
        cmap = colormaps["viridis"]
        for k, i in enumerate(picks):
            rec = diag.epochs[i]
            ys = positive([rec["grad_norm"].get(nm, float("nan")) for nm in names])
            ax.plot(range(len(names)), ys, marker="o", ms=3,
                    color=cmap(k / max(1, len(picks) - 1)), label=f"epoch {rec['epoch']}")  # fmt: skip
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_xlabel("layer (input → output)")
        ax.set_ylabel("gradient norm (epoch mean)")
        ax.set_title("gradient norm over depth")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        save(fig, "grad_norm_depth.png")
    for series, fname, ylabel, title in (
        (diag.step_grad_norms, "grad_norm_time.png", "gradient norm", "gradient norm per layer"),
        (diag.step_update_ratios, "update_ratio.png", "||Δθ|| / ||θ||", "update/weight ratio"),
    ):
        if not series or not names:
            continue
        fig, ax = subplots(figsize=(6.4, 3.8))
        cmap = colormaps["plasma"]
        for j, nm in enumerate(names):
            ys = positive([row[j] for row in series])
            ax.plot(diag.steps, ys, lw=1, color=cmap(j / max(1, len(names))), label=nm)
        if fname == "update_ratio.png":
            ax.axhline(1e-3, color="gray", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        save(fig, fname)
    acts = diag.activation_names
    if diag.epochs and acts:
        grid = []
        for nm in acts:
            key = measure(diag.activation_kinds[nm])
            grid.append([rec[key].get(nm, float("nan")) for rec in diag.epochs])
        epochs = [rec["epoch"] for rec in diag.epochs]
        fig, ax = subplots(figsize=(min(10, 5 + 0.3 * len(epochs)), 1.4 + 0.35 * len(acts)))
        im = ax.imshow(grid, aspect="auto", cmap="magma", vmin=0.0, vmax=1.0)
        labels = [f"{nm} ({measure(diag.activation_kinds[nm])})" for nm in acts]
        ax.set_yticks(range(len(acts)), labels, fontsize=7)
        step = max(1, len(epochs) // 12)
        ax.set_xticks(range(0, len(epochs), step), epochs[::step])
        ax.set_xlabel("epoch")
        ax.set_title("dead (ReLU) or saturated (sigmoid, tanh) fraction", fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.04)
        save(fig, "activation_heatmap.png")
    return written
