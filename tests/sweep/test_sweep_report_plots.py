"""The sweep report's plots: one colour per trial in every plot, legends readable."""

from __future__ import annotations

import optuna
import pytest

from gradwise.sweep import _report as rep
from gradwise.sweep import parse_sweep


def _study(n):
    study = optuna.create_study(direction="maximize")
    dist = optuna.distributions.CategoricalDistribution([0.01, 0.1, 1.0])
    for i in range(n):
        lr = (0.01, 0.1, 1.0)[i % 3]
        hist = [{"epoch": e, "val_accuracy": 0.5 + 0.1 * e - 0.01 * i} for e in (1, 2)]
        diag = {"layers": ["l0", "l1"], "grad_norm": [[1.0, 2.0], [0.5, 1.5]]}
        study.add_trial(
            optuna.trial.create_trial(
                params={"optimizer.lr": lr},
                distributions={"optimizer.lr": dist},
                value=0.7 - 0.01 * i,
                user_attrs={"run": {"history": hist, "diagnostics": diag}},
            )
        )
    return study


@pytest.fixture
def captured(monkeypatch):
    """The figures the report would save, kept open for inspection."""
    figs = {}
    monkeypatch.setattr(rep, "save_figure", lambda fig, path: figs.setdefault(path.name, fig) and path)
    return figs


def test_a_trial_has_one_colour_in_every_plot_and_the_legend_is_readable(base, tmp_path, captured):
    cfg = parse_sweep(base(sweep={"method": "grid", "metric": "val_accuracy",
                                  "params": {"optimizer.lr": {"values": [0.01, 0.1, 1.0]}}}))  # fmt: skip
    study = _study(5)
    rep.plot_curves(study, cfg, tmp_path / "curves.png")
    rep.plot_depth(study, cfg, tmp_path / "grad_norm_depth.png")

    def colours(fig):
        ax = fig.axes[0]
        out = {}
        for line in ax.get_lines():
            label = line.get_label()
            if label.startswith("#"):
                out[int(label[1:].split()[0])] = line.get_color()
        legend = ax.get_legend()
        sizes = {t.get_fontsize() for t in legend.get_texts()}
        return out, sizes

    curves, curve_sizes = colours(captured["curves.png"])
    depth, depth_sizes = colours(captured["grad_norm_depth.png"])
    assert sorted(curves) == sorted(depth) == list(range(5))
    assert curves == depth  # trial N is drawn in one colour in both plots
    assert len(set(curves.values())) == 5  # and the trials are told apart
    assert min(curve_sizes | depth_sizes) >= 8
    for name, fig in captured.items():  # >= 800 px wide at the report's dpi
        assert fig.get_figwidth() * rep.DPI >= 800, name
