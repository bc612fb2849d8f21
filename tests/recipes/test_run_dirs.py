"""Every recipe claims its run directory the same way (recipes._setup.claim_run_dir).

A second run into an existing ``runs/NAME`` is refused unless ``--overwrite``,
and a run that fails leaves no new directory behind.
"""

import json

import pytest
from typer.testing import CliRunner

from gradwise.cli import app
from gradwise.config import parse_config
from gradwise.errors import ConfigError, GradwiseError

runner = CliRunner()


def _linear(tmp_path, *args):
    return runner.invoke(
        app, ["linear", "examples/linear_sparse.yaml", "--set", f"runs_dir={tmp_path}", *args]
    )


def test_second_linear_run_refuses_unless_overwrite(tmp_path):
    assert _linear(tmp_path).exit_code == 0
    run_dir = tmp_path / "linear_sparse"
    before = (run_dir / "results.json").read_bytes()
    (run_dir / "results.json").write_text("{}")  # a marker: a refused run must not touch it
    again = _linear(tmp_path)
    assert again.exit_code == 2
    assert "already holds a run" in again.output and "--overwrite" in again.output
    assert (run_dir / "results.json").read_text() == "{}"
    assert _linear(tmp_path, "--overwrite").exit_code == 0
    assert (run_dir / "results.json").read_bytes() == before


def test_failed_linear_run_leaves_no_run_dir(tmp_path):
    result = _linear(tmp_path, "--set", "data.name=diabetez")
    assert result.exit_code == 2
    assert not (tmp_path / "linear_sparse").exists()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A one-epoch digits MLP run to fine-tune from."""
    from gradwise.recipes.train import run

    root = tmp_path_factory.mktemp("src")
    cfg = parse_config({"name": "src", "runs_dir": str(root), "data": {"name": "digits"},
                        "model": {"hidden": [16]}, "training": {"epochs": 1},
                        "callbacks": {"progress": False}})  # fmt: skip
    return run(cfg, progress=False).run_dir


def _finetune_yaml(tmp_path, source):
    path = tmp_path / "ft.yaml"
    path.write_text(
        f"name: ft\nruns_dir: {tmp_path}\nsource: {{path: {source}}}\n"
        "data: {name: digits, max_train: 100}\ntraining: {epochs: 1, batch_size: 50}\n"
        "callbacks: {progress: false}\n"
    )
    return path


def test_second_finetune_refuses_unless_overwrite(tmp_path, source):
    path = _finetune_yaml(tmp_path, source)
    first = runner.invoke(app, ["finetune", str(path), "--no-progress"])
    assert first.exit_code == 0, first.output
    results = tmp_path / "ft" / "results.json"
    before = results.read_bytes()
    again = runner.invoke(app, ["finetune", str(path), "--no-progress"])
    assert again.exit_code == 2 and "already holds a run" in again.output
    assert results.read_bytes() == before
    over = runner.invoke(app, ["finetune", str(path), "--no-progress", "--overwrite"])
    assert over.exit_code == 0, over.output
    assert results.read_bytes() == before  # the same config, bit-identical results
    assert json.loads((tmp_path / "ft" / "timings.json").read_text())["fit_seconds"] > 0


def test_failed_finetune_leaves_no_run_dir(tmp_path, source):
    path = _finetune_yaml(tmp_path, source)
    path.write_text(path.read_text().replace("name: digits,", "name: breast_cancer,"))  # 30 != 64 inputs
    result = runner.invoke(app, ["finetune", str(path), "--no-progress"])
    assert result.exit_code == 2
    assert not (tmp_path / "ft").exists()


def _instruct_cfg(tmp_path, model_path):
    from gradwise.instruct import InstructConfig

    return parse_config({"name": "it", "runs_dir": str(tmp_path), "model": {"path": str(model_path)},
                         "data": {"train": str(tmp_path / "train.jsonl")}}, InstructConfig)  # fmt: skip


def test_instruct_refuses_an_existing_run_and_a_failed_one_leaves_nothing(tmp_path):
    from gradwise.recipes.instruct import run

    (tmp_path / "it").mkdir()
    (tmp_path / "it" / "results.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds a run"):
        run(_instruct_cfg(tmp_path, tmp_path / "no-model"), overwrite=False, progress=False)
    assert (tmp_path / "it" / "results.json").read_text() == "{}"
    # a fresh run that fails (no model directory) removes the directory it made
    with pytest.raises(GradwiseError, match="not a Hugging Face model directory"):
        run(_instruct_cfg(tmp_path, tmp_path / "no-model").model_copy(update={"name": "it2"}),
            overwrite=False, progress=False)
    assert not (tmp_path / "it2").exists()
