"""The shipped sweep examples validate and are the configs the demo sections run."""

from pathlib import Path

import pytest

from gradwise.config import read_yaml
from gradwise.demo import _see_why
from gradwise.sweep import parse_sweep
from gradwise.sweep._study import apply_sweep_overrides

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHIPPED = {
    "sweep_activations.yaml": _see_why.ACTIVATIONS,
    "sweep_weight_decay.yaml": _see_why.ADAMW,
    "sweep_dropout_batchnorm.yaml": _see_why.DROPOUT_BATCHNORM,
    "sweep_l1_l2.yaml": _see_why.L1_L2,
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_example_is_the_demo_config(name):
    raw = read_yaml(EXAMPLES / name)
    assert raw == SHIPPED[name]
    cfg = parse_sweep(raw)
    assert cfg.name == Path(name).stem
    assert cfg.sweep.method == "grid" and cfg.sweep.total_trials == cfg.sweep.grid_size


def test_every_sweep_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("sweep_*.yaml")) == sorted(SHIPPED)


def test_the_adam_l2_variant_in_the_comment_validates():
    # the command line the weight-decay example documents for its coupled twin
    raw = apply_sweep_overrides(
        read_yaml(EXAMPLES / "sweep_weight_decay.yaml"),
        ["name=sweep_adam_l2", "optimizer.decoupled=false",
         "sweep.params.optimizer.weight_decay.values=[1.0e-5, 3.0e-5, 1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2, 1.0e-1]"],
    )  # fmt: skip
    cfg = parse_sweep(raw)
    assert cfg.optimizer.decoupled is False
    assert cfg.sweep.params["optimizer.weight_decay"].values == _see_why.L2_DECAYS


def test_best_decay_slope():
    lrs, decays = [1e-3, 1e-2], [1e-3, 1e-2, 1e-1]
    diagonal = [[0.1, 0.5, 0.9], [0.9, 0.1, 0.5]]  # best decay moves 10x with lr
    flat = [[0.9, 0.1, 0.5], [0.9, 0.1, 0.5]]
    assert _see_why.best_decay_slope(diagonal, lrs, decays) == pytest.approx(1.0)
    assert _see_why.best_decay_slope(flat, lrs, decays) == pytest.approx(0.0)


@pytest.mark.slow
def test_sparsity_demo_quick(tmp_path):
    from gradwise.demo import run_section

    out = run_section("sparsity", tmp_path, quick=True)
    # L1's proximal step zeroes most weights within 2 points of the best accuracy; L2 none
    assert out["l1_sparsest_within_2pts_zero_weights"] > 0.2
    assert out["l2_sparsest_within_2pts_zero_weights"] == 0.0
    assert out["l1_sparsest_within_2pts_val_accuracy"] > 0.9
    assert (tmp_path / "report.html").is_file()
    assert (tmp_path / "plots" / "sparsity_vs_accuracy.png").is_file()
