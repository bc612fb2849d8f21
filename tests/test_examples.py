"""Every shipped example config loads; the small train examples run one epoch."""

from pathlib import Path

import pytest

from gradwise.config import load_config
from gradwise.recipes.train import run

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAIN_EXAMPLES = ["digits.yaml", "breast_cancer.yaml", "diabetes.yaml"]
LINEAR_EXAMPLES = ["linear_diabetes.yaml", "linear_sparse.yaml"]


@pytest.mark.parametrize("name", TRAIN_EXAMPLES)
def test_train_example_validates(name):
    cfg = load_config(EXAMPLES / name)
    assert cfg.name == Path(name).stem


@pytest.mark.parametrize("name", ["breast_cancer.yaml", "diabetes.yaml"])
def test_small_examples_run_one_epoch(name, tmp_path):
    cfg = load_config(
        EXAMPLES / name,
        [f"runs_dir={tmp_path}", "training.epochs=1", "callbacks.progress=false"],
    )
    result = run(cfg, progress=False)
    assert (result.run_dir / "report.html").exists()
    assert result.results["test"]["loss"] > 0


@pytest.mark.parametrize("name", LINEAR_EXAMPLES)
def test_linear_example_validates(name):
    from gradwise.recipes.linear import LinearConfig

    cfg = load_config(EXAMPLES / name, model=LinearConfig)
    assert cfg.name == Path(name).stem
