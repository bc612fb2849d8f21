"""Every shipped example config loads, and its saved config repeats the run exactly.

A run's ``config.yaml`` is a fixed point of dump -> load -> dump, and running
it again gives a byte-identical ``results.json`` (CPU). Train examples run 2
epochs to keep the suite fast; the claim is about the saved config, whatever
the length.
"""

import json
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


# -- the demo sections' saved configs ------------------------------------------------------
#
# Each section's recipe run writes runs/NAME/config.yaml; that file is a fixed point of
# dump -> load -> dump, and running it again gives a byte-identical results.json. The
# sections' own configs are used, shortened (fewer epochs and rows): the claim is about
# the saved config, whatever the length. The "minilm" section's configs (MiniLM
# fine-tunes, slower) are checked in tests/recipes/test_rerun_saved_configs.py.


def _repeats(saved: Path, recipe: str, rerun) -> None:
    model = run_config(recipe)
    _fixed_point(saved, model)
    again = rerun(load_config(saved, ["name=again"], model=model))
    first = saved.parent / "results.json"
    assert (again.run_dir / "results.json").read_bytes() == first.read_bytes()


@pytest.mark.slow
def test_train_demo_saved_config_repeats_the_run(tmp_path, monkeypatch):
    import gradwise.recipes.train as recipe
    from gradwise.demo._train import train_digits

    real, ran = recipe.run, []

    def short(cfg, **kw):  # the section's own config, 2 epochs
        cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"epochs": 2})})
        ran.append(real(cfg, progress=False))
        return ran[-1]

    monkeypatch.setattr(recipe, "run", short)
    train_digits(tmp_path / "train", quick=True)
    (first,) = ran
    _repeats(first.run_dir / "config.yaml", "train", lambda cfg: real(cfg, progress=False))


@pytest.fixture(scope="module")
def digits_cnn(tmp_path_factory):
    from gradwise.demo._finetune import pretrain_digits_cnn

    out = tmp_path_factory.mktemp("finetune_demo")
    return pretrain_digits_cnn(out, epochs=1), out


@pytest.mark.parametrize(
    "label", ["full", *(pytest.param(x, marks=pytest.mark.slow) for x in ("head-only", "gradual+discr", "full+augment"))]
)
def test_finetune_demo_saved_config_repeats_the_run(digits_cnn, label):
    from gradwise.demo._finetune import digits_configs
    from gradwise.recipes.finetune import run as run_finetune

    ckpt, out = digits_cnn
    raw = digits_configs(ckpt, out / label, quick=True)[label]
    if label != "gradual+discr":  # its stages (one per unfreezing) need the section's 5 epochs
        raw = {**raw, "training": {**raw["training"], "epochs": 2}}
    first = run_finetune(parse_config(raw, run_config("finetune")), progress=False)
    assert "fit_seconds" not in json.loads((first.run_dir / "results.json").read_text())
    _repeats(first.run_dir / "config.yaml", "finetune", lambda cfg: run_finetune(cfg, progress=False))


@pytest.mark.slow
def test_instruct_demo_saved_config_repeats_the_run(tmp_path):
    pytest.importorskip("transformers")
    from gradwise.demo._instruct import run_demo
    from gradwise.recipes.instruct import sft

    tiny = {"base": {"hidden": 32, "layers": 1, "heads": 2, "documents": 200, "steps": 5},
            "n_train": 10, "n_test": 1, "epochs": 1, "batch_size": 4, "lr": 3e-3, "r": 2,
            "max_new_tokens": 4}  # fmt: skip
    out = tmp_path / "instruct"
    run_demo(out, tiny, cache=tmp_path / "cache", verbose=False)
    saved = out / "config.yaml"
    assert yaml.safe_load(saved.read_text())["optimizer"]["name"] == "adamw"
    _repeats(saved, "instruct", lambda cfg: sft(cfg, progress=False))
