"""Every shipped example config loads, and its saved config repeats the run exactly.

A run's ``config.yaml`` is a fixed point of dump -> load -> dump, and running
it again gives a byte-identical ``results.json`` (CPU). Train examples run 2
epochs to keep the suite fast; the claim is about the saved config, whatever
the length.
"""

from pathlib import Path

import pytest
import yaml

from gradwise.config import load_config, parse_config, run_config, to_yaml
from gradwise.recipes.train import run

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAIN_EXAMPLES = ["digits.yaml", "breast_cancer.yaml", "diabetes.yaml"]
LINEAR_EXAMPLES = ["linear_diabetes.yaml", "linear_sparse.yaml"]
SWEEP_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("sweep_*.yaml"))
OTHER_EXAMPLES = ["finetune_digits.yaml", "instruct.yaml"]  # tests/test_examples_finetune_instruct.py


def test_every_example_is_covered():
    covered = TRAIN_EXAMPLES + LINEAR_EXAMPLES + SWEEP_EXAMPLES + OTHER_EXAMPLES
    assert set(covered) == {p.name for p in EXAMPLES.glob("*.yaml")}


def _fixed_point(path: Path, model) -> None:
    text = path.read_text()
    assert to_yaml(parse_config(yaml.safe_load(text), model)) == text


@pytest.mark.parametrize("name", TRAIN_EXAMPLES)
def test_train_example_saved_config_repeats_the_run(name, tmp_path):
    cfg = load_config(EXAMPLES / name, [f"runs_dir={tmp_path}", "training.epochs=2", "callbacks.progress=false"])
    assert cfg.name == Path(name).stem
    first = run(cfg, progress=False)
    saved = first.run_dir / "config.yaml"
    _fixed_point(saved, run_config("train"))
    again = run(load_config(saved, ["name=again"]), progress=False)
    assert (again.run_dir / "results.json").read_bytes() == (first.run_dir / "results.json").read_bytes()
    assert first.results["test"]["loss"] > 0


@pytest.mark.parametrize("name", LINEAR_EXAMPLES)
def test_linear_example_saved_config_repeats_the_run(name, tmp_path):
    from gradwise.recipes.linear import run as run_linear

    model = run_config("linear")
    cfg = load_config(EXAMPLES / name, [f"runs_dir={tmp_path}"], model=model)
    assert cfg.name == Path(name).stem
    first = run_linear(cfg)
    saved = first.run_dir / "config.yaml"
    _fixed_point(saved, model)
    again = run_linear(load_config(saved, ["name=again"], model=model))
    assert (again.run_dir / "results.json").read_bytes() == (first.run_dir / "results.json").read_bytes()


@pytest.mark.parametrize(
    "name",
    [n if n == "sweep_l1_l2.yaml" else pytest.param(n, marks=pytest.mark.slow) for n in SWEEP_EXAMPLES],
)
def test_sweep_example_trial_config_repeats_the_trial(name, tmp_path):
    from gradwise.sweep import load_sweep_config
    from gradwise.sweep._config import trial_raw

    sweep = load_sweep_config(EXAMPLES / name, [f"runs_dir={tmp_path}", "training.epochs=1"])
    values = {path: spec.candidates()[-1] for path, spec in sweep.sweep.params.items()}
    trial = parse_config(trial_raw(sweep.base(), values))
    first = run(trial.model_copy(update={"name": "trial"}), progress=False)
    saved = first.run_dir / "config.yaml"
    _fixed_point(saved, run_config("train"))
    again = run(load_config(saved, ["name=again"]), progress=False)
    assert (again.run_dir / "results.json").read_bytes() == (first.run_dir / "results.json").read_bytes()
