import subprocess
import sys

import pytest
from typer.testing import CliRunner

from gradwise.cli import app

runner = CliRunner()


def _write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_config_error_exits_2_with_one_clear_message(tmp_path):
    path = _write(tmp_path, "name: x\ndata: {name: digits}\nmodel: {hiden: [8]}\n")
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 2
    assert "model.hiden" in result.output and "did you mean 'hidden'" in result.output


def test_bad_set_value_names_field(tmp_path):
    path = _write(tmp_path, "name: x\ndata: {name: digits}\n")
    result = runner.invoke(app, ["train", str(path), "--set", "optimizer.lr=-3"])
    assert result.exit_code == 2
    assert "optimizer.lr" in result.output and "-3" in result.output


def test_unknown_dataset_is_a_clear_error(tmp_path):
    path = _write(tmp_path, f"name: x\nruns_dir: {tmp_path}\ndata: {{name: digitz}}\n")
    result = runner.invoke(app, ["train", str(path), "--no-progress"])
    assert result.exit_code == 2
    assert "did you mean 'digits'" in result.output


def test_missing_config_file(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_demo_list_names_sections():
    result = runner.invoke(app, ["demo", "--list"])
    assert result.exit_code == 0
    assert "train" in result.output


def test_unknown_demo_section():
    result = runner.invoke(app, ["demo", "trian"])
    assert result.exit_code == 2
    assert "did you mean 'train'" in result.output


def test_real_process_has_no_traceback(tmp_path):
    path = _write(tmp_path, "optimizer: {name: adamm}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "gradwise", "train", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "optimizer.name" in proc.stderr and "did you mean 'adam'" in proc.stderr


def test_report_command_needs_a_run_dir(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "no metrics.jsonl" in result.output and "results.json" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such run directory" in result.output
    assert not (tmp_path / "nope").exists()


def test_report_redraws_a_linear_fit_keeping_its_page(tmp_path):
    result = runner.invoke(app, ["linear", "examples/linear_sparse.yaml", "--set", f"runs_dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "linear_sparse"
    first = (run / "report.html").read_text()
    assert "lam_min = " in first and "The path: coefficients against log lam" in first
    (run / "report.html").unlink()
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    again = (run / "report.html").read_text()
    assert again == first  # the same page: text, results, the three plots, the config
    assert again.count("<img") == 3

    # a linear run from before report.json: its results, plots and config
    (run / "report.json").unlink()
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert page.count("<img") == 3 and "test_r2" in page and "kind: lasso" in page


@pytest.mark.slow
def test_train_digits_example_reaches_095(tmp_path):
    result = runner.invoke(
        app,
        ["train", "examples/digits.yaml", "--no-progress", "--set", f"runs_dir={tmp_path}"],
    )
    assert result.exit_code == 0, result.output
    import json

    res = json.loads((tmp_path / "digits" / "results.json").read_text())
    assert res["test"]["accuracy"] >= 0.95, res
    run = tmp_path / "digits"
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "report.html", "plots/loss.png"):
        assert (run / name).exists(), name
    assert any((run / "checkpoints").iterdir())


def test_lr_find_command_prints_suggestion(tmp_path):
    path = _write(
        tmp_path,
        f"name: f\nruns_dir: {tmp_path}\ndata: {{name: breast_cancer}}\nmodel: {{hidden: [8]}}\n",
    )
    result = runner.invoke(app, ["lr-find", str(path)])
    assert result.exit_code == 0, result.output
    assert "suggested lr:" in result.output
    assert (tmp_path / "f" / "lr_find.png").exists()


@pytest.mark.slow
def test_torchrun_two_processes_write_one_run(tmp_path):
    import json
    import shutil
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = shutil.which("torchrun", path=str(__import__("pathlib").Path(sys.executable).parent))
    path = _write(
        tmp_path,
        f"name: ddp\nruns_dir: {tmp_path}\ndata: {{name: breast_cancer}}\nmodel: {{hidden: [8]}}\n"
        "training: {epochs: 2, batch_size: 16}\ncallbacks: {progress: false}\n",
    )
    proc = subprocess.run(
        [torchrun, "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={port}",
         "-m", "gradwise", "train", str(path), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("report:") == 1  # rank 0 prints, rank 1 stays quiet
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    epochs = [json.loads(x)["epoch"] for x in lines if '"type": "epoch"' in x]
    assert epochs == [1, 2]  # written once, not once per process


def test_sweep_config_error_exits_2(tmp_path):
    path = _write(
        tmp_path,
        "data: {name: iris}\nsweep: {method: grdi, params: {optimizer.lr: {values: [0.1]}}}\n",
    )
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 2
    assert "method" in result.output


def test_finetune_config_error_exits_2(tmp_path):
    path = _write(tmp_path, "name: f\nplann: {}\n")
    result = runner.invoke(app, ["finetune", str(path)])
    assert result.exit_code == 2
    assert "plann" in result.output


def test_instruct_config_error_exits_2(tmp_path):
    path = _write(tmp_path, "name: i\nlorra: {r: 8}\n")
    result = runner.invoke(app, ["instruct", str(path)])
    assert result.exit_code == 2
    assert "lorra" in result.output


def test_instruct_init_base_needs_out():
    result = runner.invoke(app, ["instruct", "init-base"])
    assert result.exit_code == 2
    assert "--out" in result.output


@pytest.fixture(scope="module")
def digits_source(tmp_path_factory):
    """A tiny trained digits run to fine-tune from (one epoch, small MLP)."""
    root = tmp_path_factory.mktemp("src")
    path = root / "src.yaml"
    path.write_text(
        f"name: ref\nruns_dir: {root}\ndata: {{name: digits}}\nmodel: {{hidden: [32]}}\n"
        "training: {epochs: 1, batch_size: 64}\n"
    )
    result = runner.invoke(app, ["train", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    return root / "ref"


def test_finetune_with_source_data_prints_forgetting(tmp_path, digits_source):
    # the repro: source_data adds a forgetting line whose "metric" is a string
    path = _write(
        tmp_path,
        f"name: ft\nruns_dir: {tmp_path}\nsource: {{path: {digits_source}}}\n"
        "data: {name: digits, classes: [5, 6, 7, 8, 9], max_train: 100}\n"
        "source_data: {name: digits}\nplan: {kind: gradual, every: 1}\n"
        "optimizer: {name: adamw, lr: 0.003}\ntraining: {epochs: 2, batch_size: 20}\n",
    )
    result = runner.invoke(app, ["finetune", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if "forgetting:" in ln)
    assert "metric=accuracy" in line and "before=" in line and "change=" in line
    import json

    res = json.loads((tmp_path / "ft" / "results.json").read_text())
    before = res["source_before"]["accuracy"]
    assert f"before={before:.4g}" in line


def test_missing_csv_exits_2_naming_the_path(tmp_path):
    path = _write(
        tmp_path, f"name: m\nruns_dir: {tmp_path}\ndata: {{path: {tmp_path}/nope.csv, target: y}}\n"
    )
    result = runner.invoke(app, ["train", str(path), "--no-progress"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [f"error: {tmp_path}/nope.csv: no such CSV file"], lines


def test_finetune_on_data_of_another_width_exits_2_naming_both_sizes(tmp_path, digits_source):
    path = _write(
        tmp_path,
        f"name: ft\nruns_dir: {tmp_path}\nsource: {{path: {digits_source}}}\n"
        "data: {name: breast_cancer}\ntraining: {epochs: 1}\n",
    )
    result = runner.invoke(app, ["finetune", str(path), "--no-progress"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "30 features" in lines[0] and "takes 64" in lines[0], lines
    assert not (tmp_path / "ft" / "model.safetensors").exists()


@pytest.mark.parametrize(
    "head, words",
    [
        ("binary", ["head 'binary'", "3 outputs", "head: multiclass"]),
        ("regression", ["class labels (3 distinct integers", "head: multiclass"]),
    ],
)
def test_wrong_head_for_the_data_exits_2_in_config_terms(tmp_path, head, words):
    path = _write(
        tmp_path, f"name: h\nruns_dir: {tmp_path}\ndata: {{name: iris}}\nhead: {head}\n"
    )
    result = runner.invoke(app, ["train", str(path), "--no-progress"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), lines
    assert "head('" not in lines[0] and "(N, 3)" not in lines[0]


def test_rare_class_exits_2_without_a_python_hint(tmp_path):
    csv = tmp_path / "rare.csv"
    csv.write_text("a,y\n" + "".join(f"{i},{'b' if i == 0 else 'a'}\n" for i in range(12)))
    path = _write(
        tmp_path, f"name: r\nruns_dir: {tmp_path}\ndata: {{path: {csv}, target: y}}\n"
    )
    result = runner.invoke(app, ["train", str(path), "--no-progress"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "class 'b' has only 1 row" in lines[0], lines
    assert "stratify" not in lines[0]


def test_demo_prints_values_with_significant_digits(monkeypatch):
    import numpy as np

    import gradwise.demo as demo

    values = {"sigmoid_first_over_last_grad": 6.1e-7, "precision": 0.4545,
              "lam": np.float64(0.01), "nonzero": "5/50", "seconds": 1.2}
    monkeypatch.setattr(demo, "run_section", lambda name, out, quick: dict(values))
    result = runner.invoke(app, ["demo", "train"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "sigmoid_first_over_last_grad: 6.1e-07" in out  # .4f printed 0.0000
    assert "precision: 0.4545" in out and "lam: 0.01" in out and "nonzero: 5/50" in out


def test_linear_prints_readable_values(tmp_path):
    result = runner.invoke(
        app,
        ["linear", "examples/linear_sparse.yaml", "--set", f"runs_dir={tmp_path}",
         "--set", "model.lam=0.1"],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "np.float" not in out and "{" not in out and "'" not in out
    assert "support: precision=" in out and "compare_nonzero: lasso (L1)=" in out
    import json

    res = json.loads((tmp_path / "linear_sparse" / "results.json").read_text())
    assert f"test_r2: {res['test_r2']:.4g}" in out


def test_train_log_lines_early_stop_after_its_epoch_and_no_wrap(tmp_path):
    # captured output is not a terminal: one line per epoch, each event after its epoch
    path = _write(
        tmp_path,
        f"name: es\nruns_dir: {tmp_path}\ndata: {{name: breast_cancer}}\n"
        "model: {hidden: [64, 64]}\ntraining: {epochs: 20}\n"
        "callbacks: {early_stopping: {monitor: val_loss, patience: 1, min_delta: 10.0}}\n",
    )
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    epochs = [i for i, ln in enumerate(lines) if ln.startswith("epoch ")]
    assert len(epochs) == 2  # stopped after epoch 2: nothing better by 10.0
    for i in epochs:
        assert "val_accuracy" in lines[i] and lines[i].endswith("s") and len(lines[i]) > 80
        assert float(lines[i].rsplit("  ", 1)[1].rstrip("s")) > 0
    stop = next(i for i, ln in enumerate(lines) if ln.startswith("[early_stop]"))
    assert epochs[-1] < stop
    assert all(not ln.startswith(("val_", "0.")) for ln in lines)  # no wrapped fragments


def test_a_failed_lr_find_leaves_no_run_dir(tmp_path):
    path = _write(tmp_path, f"name: lrf\nruns_dir: {tmp_path}\ndata: {{name: digitz}}\n")
    result = runner.invoke(app, ["lr-find", str(path)])
    assert result.exit_code == 2
    assert "unknown dataset 'digitz' (did you mean 'digits'?)" in result.output
    assert not (tmp_path / "lrf").exists()


def test_report_of_a_file_says_it_is_not_a_run_directory(tmp_path):
    path = _write(tmp_path, "name: x\n")
    result = runner.invoke(app, ["report", str(path)])
    assert result.exit_code == 2
    assert f"{path}: a file, not a run directory" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "FILE"], "--out: FILE is a file; give a directory for the base model"),
        (["--out", "FULL"], "--out: FULL is not empty; pass --overwrite to replace it"),
        (["--out", "NEW", "--set", "steps=5"], "instruct init-base takes no --set (got 'steps=5')"),
    ],
    ids=["out-is-a-file", "out-not-empty", "set"],
)
def test_init_base_refuses_bad_options_at_once(tmp_path, args, message):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "FULL").mkdir()
    (tmp_path / "FULL" / "keep.txt").write_text("mine")
    args = [str(tmp_path / a) if a in ("FILE", "FULL", "NEW") else a for a in args]
    result = runner.invoke(app, ["instruct", "init-base", *args])
    assert result.exit_code == 2
    assert message.replace("FILE", str(tmp_path / "FILE")).replace("FULL", str(tmp_path / "FULL")) in result.output
    assert (tmp_path / "FULL" / "keep.txt").read_text() == "mine" and not (tmp_path / "NEW").exists()


def test_instruct_config_refuses_out(tmp_path):
    result = runner.invoke(app, ["instruct", "examples/instruct.yaml", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "--out is for instruct init-base" in result.output and not (tmp_path / "x").exists()


def test_a_sweep_whose_storage_fails_leaves_no_run_dir(tmp_path):
    result = runner.invoke(app, ["sweep", "examples/sweep_weight_decay.yaml", "--set", f"runs_dir={tmp_path}",
                                 "--storage", "foo://bar"])  # fmt: skip
    assert result.exit_code == 2
    assert "storage foo://bar: cannot open the database" in result.output
    assert list(tmp_path.iterdir()) == []


def test_init_base_says_what_it_does_before_its_silent_first_steps(tmp_path, monkeypatch):
    import inspect
    from types import SimpleNamespace

    import gradwise.instruct as gi

    seen = []

    def fake_init_base(out, *, documents=20_000, steps=500, progress=False):
        seen.append(out)
        return SimpleNamespace(n_parameters=10, steps=steps, losses=[6.0, 2.0], seconds=1.0)

    real = inspect.signature(gi.init_base).parameters
    monkeypatch.setattr(gi, "init_base", fake_init_base)
    result = runner.invoke(app, ["instruct", "init-base", "--out", str(tmp_path / "base")])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"instruct init-base: a corpus of {real['documents'].default:,} documents")
    assert f"then {real['steps'].default} pretraining steps" in first
    assert seen == [tmp_path / "base"]
