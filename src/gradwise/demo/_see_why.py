"""Demo sections that show *why* a technique works, each one a small sweep.

* ``activations``: five activations on an 8-layer MLP; gradient norms per layer.
* ``weight-decay``: Adam + L2 against AdamW over a (learning rate, weight decay) grid
  (the section itself is in :mod:`gradwise.demo._weight_decay`; its configs and
  :func:`best_decay_slope` are here, its edge rule there).
* ``regularize``: dropout and batch norm on and off; the gap between train and validation.
* ``sparsity``: L1 against L2 as proximal steps; zero weights against accuracy.

The configs are the ones shipped as ``examples/sweep_*.yaml`` (a test keeps
them equal); the quick versions shrink epochs and grids.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from gradwise.demo._registry import register

ACTIVATIONS: dict[str, Any] = {
    "name": "sweep_activations",
    "data": {"name": "digits", "val": 0.15, "test": 0.15, "seed": 0},
    "model": {"hidden": [64] * 8, "activation": "relu"},
    "optimizer": {"name": "adam", "lr": 0.001},
    "training": {"epochs": 15, "batch_size": 64, "seed": 0},
    "sweep": {
        "method": "grid",
        "metric": "val_accuracy",
        "diagnostics": 1,
        "params": {
            "model.activation": {"values": ["sigmoid", "tanh", "relu", "leaky_relu", "elu"]}
        },
    },
}
ADAMW: dict[str, Any] = {
    "name": "sweep_weight_decay",
    "data": {"name": "digits", "val": 0.25, "test": 0.5, "seed": 0},
    "model": {"hidden": [256, 256]},
    "optimizer": {"name": "adam", "lr": 0.001, "weight_decay": 0.0, "decoupled": True},
    "schedule": {"name": "cosine"},
    "training": {"epochs": 20, "batch_size": 32, "seed": 0},
    # no divergence guard: its trend rule halves the lr of a run that stops
    # improving and ends it with its best epoch's weights, blurring the lr axis
    "callbacks": {"divergence_guard": {"enabled": False}},
    "sweep": {
        "method": "grid",
        "metric": "val_loss",
        "params": {
            "optimizer.lr": {"values": [1.0e-3, 3.0e-3, 1.0e-2]},
            "optimizer.weight_decay": {
                "values": [1.0e-2, 3.0e-2, 1.0e-1, 3.0e-1, 1.0, 3.0, 10.0, 30.0]
            },
        },
    },
}
# Adam + L2 needs a range about 100x lower: its decay is divided by Adam's gradient scale
L2_DECAYS = [1.0e-5, 3.0e-5, 1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2, 1.0e-1]
# the quick grids: the same 3 lr x 4 decays each, the decays around the edge of the good band
QUICK_LRS = [1.0e-3, 3.0e-3, 1.0e-2]
QUICK_ADAMW_DECAYS = [1.0, 3.0, 10.0, 30.0]
QUICK_L2_DECAYS = [3.0e-3, 1.0e-2, 3.0e-2, 1.0e-1]
DROPOUT_BATCHNORM: dict[str, Any] = {
    "name": "sweep_dropout_batchnorm",
    "data": {
        "name": "moons",
        "options": {"n": 200, "noise": 0.35},
        "val": 0.3,
        "test": 0.3,
        "seed": 0,
    },  # fmt: skip
    "model": {"hidden": [256, 256]},
    "optimizer": {"name": "adam", "lr": 0.003},
    "training": {"epochs": 100, "batch_size": 16, "seed": 0},
    # no divergence guard: its trend rule would end each run with its best
    # epoch's weights, before the overfitting this sweep is about
    "callbacks": {"divergence_guard": {"enabled": False}},
    "sweep": {
        "method": "grid",
        "metric": "val_loss",
        "params": {
            "model.dropout": {"values": [0.0, 0.5]},
            "model.batchnorm": {"values": [False, True]},
        },
    },
}
L1_L2: dict[str, Any] = {
    "name": "sweep_l1_l2",
    "data": {"name": "digits", "val": 0.15, "test": 0.15, "seed": 0},
    "model": {"hidden": [128, 128]},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "prox": {"kind": "l1", "lam": 0.001}},
    "schedule": {"name": "cosine"},
    "training": {"epochs": 20, "batch_size": 64, "seed": 0},
    "sweep": {
        "method": "grid",
        "metric": "val_accuracy",
        "params": {
            "optimizer.prox.kind": {"values": ["l1", "l2"]},
            "optimizer.prox.lam": {"values": [1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2, 1.0e-1]},
        },
    },
}


QUICK_SUFFIX = "_quick"
"""Appended to a quick sweep's name: its study (``runs/NAME/study.db``) and runs
are its own, so that the full section in the same directory never resumes the
quick one's trials (Optuna loads an existing study of the same name)."""


def _run(
    raw: dict[str, Any],
    out_dir: Path,
    changes: dict[tuple[str, ...], Any],
    quick: bool,
    seed: int = 0,
) -> Any:
    """Run one sweep config under ``out_dir``; ``changes`` maps key paths to new values.

    Key paths are tuples because a swept parameter's name has dots of its own
    (``("sweep", "params", "optimizer.lr")``). A quick sweep's name ends in
    :data:`QUICK_SUFFIX`. ``seed`` sets ``data.seed`` and ``training.seed``.
    """
    from gradwise.sweep import parse_sweep, run_sweep

    raw = copy.deepcopy(raw)
    raw["runs_dir"] = str(out_dir)
    changes = {**changes, ("data", "seed"): seed, ("training", "seed"): seed}
    for keys, value in changes.items():
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    if quick:
        raw["name"] += QUICK_SUFFIX
    return run_sweep(parse_sweep(raw))


def _open(result: Any) -> tuple[Any, Any]:
    """The study of a finished sweep and its config."""
    from gradwise.config import read_yaml
    from gradwise.sweep import open_study, parse_sweep
    from gradwise.sweep._storage import quiet_optuna

    cfg = parse_sweep(read_yaml(result.run_dir / "sweep.yaml"))
    with quiet_optuna():
        return open_study(cfg, f"sqlite:///{(result.run_dir / 'study.db').resolve()}"), cfg


def _study(result: Any) -> list[Any]:
    """The complete trials of a sweep, with their stored runs."""
    from gradwise.sweep._report import finished_trials

    study, _ = _open(result)
    return [t for t in finished_trials(study) if t.state.name == "COMPLETE"]


def _save(fig: Any, path: Path) -> Path:
    from gradwise.sweep._report import save_figure

    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)


def _page(out_dir: Path, title: str, sections: list[Any]) -> Path:
    from gradwise._io import write_text
    from gradwise.report import render_html

    return write_text(out_dir / "report.html", render_html(title, sections))


def _figure(width: float, height: float, *grid: int) -> tuple[Any, Any]:
    """A Figure on its own Agg canvas (no ``matplotlib.use``) and its axes."""
    from gradwise._io import new_figure

    fig = new_figure(width, height)
    return fig, fig.subplots(*grid)


def _colormap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name]


# -- activations ---------------------------------------------------------------------------


@register("activations", "Why ReLU: gradient norms through 8 layers, five activations", order=70)
def activations(out_dir: Path, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    quick_changes = {("training", "epochs"): 6} if quick else {}
    result = _run(ACTIVATIONS, Path(out_dir), quick_changes, quick, seed)
    out: dict[str, Any] = {}
    for t in _study(result):
        act = t.params["model.activation"]
        diag = t.user_attrs["run"]["diagnostics"]
        first = diag["grad_norm"][0]
        out[f"{act}_accuracy"] = t.value
        # how much of the gradient reaching the last layer is left at the first, epoch 1
        out[f"{act}_first_over_last_grad"] = first[0] / first[-1]
        if diag["saturated"]:
            out[f"{act}_most_saturated"] = max(diag["saturated"].values())
    out["report"] = str(result.report)
    return out


# -- weight decay (the section: gradwise.demo._weight_decay) -------------------------------


def best_decay_slope(grid: list[list[float]], lrs: list[float], decays: list[float]) -> float:
    """Slope of log10(best weight decay) against log10(lr), one best per row (lower is better).

    About 0 when the best decay does not depend on the learning rate (a
    horizontal band), positive when it moves with it (a diagonal).
    """
    import numpy as np

    pts = [(math.log10(lr), math.log10(decays[int(np.nanargmin(row))]))
           for lr, row in zip(lrs, grid) if np.isfinite(row).any()]  # fmt: skip
    if len(pts) < 2:
        return math.nan
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


# -- dropout and batch norm ---------------------------------------------------------------


QUICK_REGULARIZE_EPOCHS = 50
"""Epochs of the quick ``regularize`` section (the full one: the config's 100)."""


@register("regularize", "Dropout and batch norm on/off: the train-validation gap", order=72)
def regularize(out_dir: Path, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    from gradwise.report import Section

    out_dir = Path(out_dir)
    changes = {("training", "epochs"): QUICK_REGULARIZE_EPOCHS} if quick else {}
    result = _run(DROPOUT_BATCHNORM, out_dir, changes, quick, seed)
    fig, (curve_ax, bar_ax) = _figure(10, 3.8, 1, 2)
    colors = _colormap("tab10")
    out: dict[str, Any] = {}
    rows, labels, gaps = [], [], []
    trials = sorted(
        _study(result), key=lambda t: (t.params["model.dropout"], t.params["model.batchnorm"])
    )
    for i, t in enumerate(trials):
        p = t.params
        label = f"dropout {p['model.dropout']:g}, BN {'on' if p['model.batchnorm'] else 'off'}"
        hist = t.user_attrs["run"]["history"]
        epochs = [r["epoch"] for r in hist]
        curve_ax.plot(epochs, [r["val_loss"] for r in hist], color=colors(i), label=label)
        curve_ax.plot(epochs, [r["train_loss"] for r in hist], color=colors(i), ls="--", lw=1)
        final = t.user_attrs["run"]["results"]
        # both losses of the final model in eval mode (no dropout, running BN statistics)
        gap = final["val"]["loss"] - final["train"]["loss"]
        labels.append(label.replace(", ", "\n"))
        gaps.append(gap)
        key = f"dropout{p['model.dropout']:g}_bn{int(p['model.batchnorm'])}"
        out[f"{key}_gap"] = gap
        out[f"{key}_val_accuracy"] = final["val"]["accuracy"]
        rows.append({"setting": label, "train loss": final["train"]["loss"],
                     "val loss": final["val"]["loss"], "gap (val - train)": gap,
                     "train accuracy": final["train"]["accuracy"],
                     "val accuracy": final["val"]["accuracy"],
                     "best epoch val loss": min(r["val_loss"] for r in hist)})  # fmt: skip
    curve_ax.set_yscale("log")
    curve_ax.set_xlabel("epoch")
    curve_ax.set_title("loss per epoch: validation (solid), training (dashed)", fontsize=9)
    curve_ax.grid(alpha=0.3)
    curve_ax.legend(fontsize=7)
    bar_ax.bar(range(len(gaps)), gaps, color=[colors(i) for i in range(len(gaps))])
    bar_ax.set_xticks(range(len(gaps)), labels, fontsize=7)
    bar_ax.set_title("final gap: val loss - train loss (eval mode)", fontsize=9)
    bar_ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    figure = _save(fig, out_dir / "plots" / "train_val_gap.png")
    text = (
        "A 256-256 MLP trained with Adam on 80 noisy two-moons points overfits: it bends its "
        "boundary around the noise, so its training loss keeps falling while the validation "
        "loss turns up. The runs have no divergence guard, whose trend rule would end them with "
        "their best epoch's weights, before the overfitting. The gap is the validation loss "
        "minus the training loss of the final model, both measured in eval mode. Dropout "
        "narrows it, with batch norm or without. The dashed training "
        "curves are epoch "
        "averages measured while training (dropout active), so early on they lie above the "
        "validation curve. Every run's records are in the sweep report."
    )
    sec = Section("Dropout and batch norm", text=text, tables=[("", rows)], images=[figure])
    sweep_link = Section("Sweep", text=f"sweep report: {result.report}")
    out["report"] = str(_page(out_dir, "gradwise demo: dropout and batch norm", [sec, sweep_link]))
    return out


# -- L1 vs L2 -----------------------------------------------------------------------------


@register("sparsity", "L1 vs L2 proximal steps: zero weights against accuracy", order=73)
def sparsity(out_dir: Path, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    from gradwise.report import Section

    out_dir = Path(out_dir)
    changes: dict[tuple[str, ...], Any] = {}
    if quick:
        changes = {("training", "epochs"): 8,
                   ("sweep", "params", "optimizer.prox.lam"): {"values": [1.0e-3, 1.0e-2, 3.0e-2]}}  # fmt: skip
    result = _run(L1_L2, out_dir, changes, quick, seed)
    points: dict[str, list[tuple[float, float, float]]] = {"l1": [], "l2": []}
    for t in _study(result):
        run = t.user_attrs["run"]
        points[t.params["optimizer.prox.kind"]].append(
            (t.params["optimizer.prox.lam"], run["sparsity"], t.value)
        )
    fig, ax = _figure(6.4, 4)
    out: dict[str, Any] = {}
    rows = []
    for kind, pts in points.items():
        pts.sort()
        ax.plot([p[1] for p in pts], [p[2] for p in pts], marker="o", label=kind.upper())
        for lam, zeros, acc in pts:
            ax.annotate(
                f"{lam:g}", (zeros, acc), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
            rows.append(
                {"penalty": kind.upper(), "lam": lam, "zero weights": zeros, "val accuracy": acc}
            )
        # the sparsest model that stays within 2 points of the best accuracy
        best = max(p[2] for p in pts)
        lam, zeros, acc = max((p for p in pts if p[2] >= best - 0.02), key=lambda p: p[1])
        out[f"{kind}_sparsest_within_2pts_zero_weights"] = zeros
        out[f"{kind}_sparsest_within_2pts_val_accuracy"] = acc
        out[f"{kind}_sparsest_within_2pts_lam"] = lam
    ax.set_xlabel("fraction of weights exactly zero")
    ax.set_ylabel("validation accuracy")
    ax.set_title("L1 vs L2 (labels: lam)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    figure = _save(fig, out_dir / "plots" / "sparsity_vs_accuracy.png")
    text = (
        "The same SGD run with a proximal penalty step after each update: L1's soft-threshold "
        "sets weights below lr * lam to exactly zero, L2's shrinks every weight by 1/(1 + lr * lam) "
        "and never reaches zero. Zero weights are counted over the weight matrices (not biases)."
    )
    sec = Section("L1 vs L2", text=text, tables=[("", rows)], images=[figure])
    sweep_link = Section("Sweep", text=f"sweep report: {result.report}")
    out["report"] = str(_page(out_dir, "gradwise demo: L1 vs L2 sparsity", [sec, sweep_link]))
    return out
