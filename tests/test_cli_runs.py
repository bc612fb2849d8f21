"""The command line on the run directory: no silent overwrite, clean failures, clear errors."""

import json

import yaml
from typer.testing import CliRunner

from gradwise.cli import app

runner = CliRunner()


def _config(tmp_path, extra=""):
    path = tmp_path / "c.yaml"
    path.write_text(
        f"name: r\nruns_dir: {tmp_path / 'runs'}\ndata: {{name: breast_cancer}}\n"
        "model: {hidden: [8]}\noptimizer: {name: adamw, lr: 0.01}\n"
        "training: {epochs: 2, batch_size: 128}\n" + extra
    )
    return path


def _train(*args):
    return runner.invoke(app, ["train", *map(str, args), "--no-progress"])


def test_second_train_refuses_to_overwrite_the_run(tmp_path):
    path = _config(tmp_path)
    assert _train(path).exit_code == 0
    before = (tmp_path / "runs" / "r" / "results.json").read_text()
    again = _train(path, "--set", "training.epochs=1")
    assert again.exit_code == 2
    assert "already holds a run" in again.output and "--overwrite" in again.output
    assert (tmp_path / "runs" / "r" / "results.json").read_text() == before
    assert _train(path, "--set", "training.epochs=1", "--overwrite").exit_code == 0
    saved = yaml.safe_load((tmp_path / "runs" / "r" / "config.yaml").read_text())
    assert saved["training"]["epochs"] == 1


def test_saved_config_reruns_to_identical_results(tmp_path):
    # the repro: a saved adamw config must load and repeat the run exactly
    path = _config(tmp_path)
    assert _train(path).exit_code == 0
    first = tmp_path / "runs" / "r"
    second = _train(first / "config.yaml", "--set", "name=r2")
    assert second.exit_code == 0, second.output
    a = (first / "results.json").read_bytes()
    assert a == (tmp_path / "runs" / "r2" / "results.json").read_bytes()
    assert (tmp_path / "runs" / "r2" / "config.yaml").read_text() == (first / "config.yaml").read_text().replace(
        "name: r\n", "name: r2\n", 1
    )


def test_resume_refuses_a_changed_config(tmp_path):
    path = _config(tmp_path)
    assert _train(path).exit_code == 0
    result = _train(path, "--resume", "--set", "optimizer.lr=0.5")
    assert result.exit_code == 2
    assert "optimizer.lr" in result.output and "differs" in result.output


def test_resume_without_checkpoint_is_an_error(tmp_path):
    path = _config(tmp_path, "callbacks: {checkpoint: {enabled: false}}\n")
    result = _train(path, "--resume")
    assert result.exit_code == 2
    assert "no checkpoint to resume from" in result.output
    assert not (tmp_path / "runs" / "r").exists()


def test_failed_run_leaves_no_run_dir(tmp_path):
    path = _config(tmp_path)
    result = _train(path, "--set", "data.name=digitz")
    assert result.exit_code == 2
    assert not (tmp_path / "runs" / "r").exists()


def test_resume_of_an_early_stopped_run_trains_no_more(tmp_path):
    path = _config(
        tmp_path,
        "callbacks: {early_stopping: {monitor: val_loss, patience: 1, min_delta: 1000.0}}\n",
    )
    path.write_text(path.read_text().replace("epochs: 2", "epochs: 10"))
    assert _train(path).exit_code == 0
    log = tmp_path / "runs" / "r" / "metrics.jsonl"
    epochs = [r["epoch"] for r in map(json.loads, log.read_text().splitlines()) if r["type"] == "epoch"]
    assert epochs == [1, 2]  # no improvement of 1000 after the first epoch
    assert _train(path, "--resume").exit_code == 0
    again = [r["epoch"] for r in map(json.loads, log.read_text().splitlines()) if r["type"] == "epoch"]
    assert again == epochs


def test_set_on_a_list_yaml_and_a_malformed_value(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    result = _train(listed)
    assert result.exit_code == 2 and str(listed) in result.output and "mapping" in result.output
    result = _train(listed, "--set", "name=x")
    assert result.exit_code == 2 and "mapping" in result.output
    result = _train(_config(tmp_path), "--set", "optimizer.lr=[0.1")
    assert result.exit_code == 2
    assert "--set optimizer.lr" in result.output and "not a YAML value" in result.output


def test_lr_word_reads_like_the_other_errors(tmp_path):
    result = _train(_config(tmp_path), "--set", "optimizer.lr=fast")
    assert result.exit_code == 2
    assert "optimizer.lr: a number > 0 or 'auto', got 'fast'" in result.output
    assert "literal" not in result.output
