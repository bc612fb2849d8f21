"""The CLI's config errors name the file and the field, and suggest the value meant."""

from typer.testing import CliRunner

from gradwise.cli import app

runner = CliRunner()


def _one_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def test_a_directory_is_named_with_a_config_inside(tmp_path):
    (tmp_path / "digits.yaml").write_text("name: x\ndata: {name: digits}\n")
    out = _one_line(runner.invoke(app, ["train", str(tmp_path)]))
    assert "is a directory" in out and "digits.yaml" in out


def test_an_empty_file_is_named(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    for cmd in ("train", "sweep"):
        out = _one_line(runner.invoke(app, [cmd, str(path)]))
        assert "empty.yaml" in out and "the file is empty" in out


def test_an_unknown_activation_names_the_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ndata: {name: digits}\nmodel: {activation: rleu}\n")
    out = _one_line(runner.invoke(app, ["train", str(path)]))
    assert "model.activation: unknown activation 'rleu' (did you mean 'relu'?)" in out
    assert "got 'rleu'" not in out  # the value is quoted once


def test_a_misspelled_sweep_metric_names_the_file_and_the_key_meant(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "data: {name: iris}\n"
        "sweep: {method: grid, metric: val_los, params: {optimizer.lr: {values: [0.1]}}}\n"
    )
    out = _one_line(runner.invoke(app, ["sweep", str(path)]))
    assert "s.yaml" in out and "(did you mean 'val_loss'?)" in out and "set direction" in out
