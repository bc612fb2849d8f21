import json

import pytest
import torch

from gradwise.config import parse_config
from gradwise.recipes.train import run


def _cfg(tmp_path, **over):
    raw = {
        "name": "r",
        "runs_dir": str(tmp_path),
        "data": {"name": "breast_cancer"},
        "model": {"hidden": [16]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 3, "batch_size": 64, "seed": 0},
        "callbacks": {"progress": False},
    }
    for key, value in over.items():
        raw[key] = {**raw.get(key, {}), **value}
    return parse_config(raw)


def test_binary_run_writes_run_dir_and_learns(tmp_path):
    result = run(_cfg(tmp_path))
    run_dir = tmp_path / "r"
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved == json.loads(json.dumps(result.results))
    assert saved["test"]["accuracy"] > 0.85  # 3 epochs on standardized breast_cancer
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs if r["type"] == "epoch"] == [1, 2, 3]
    assert (run_dir / "config.yaml").read_text().startswith("name: r")


def test_same_seed_same_weights(tmp_path):
    a = run(_cfg(tmp_path / "a")).model.state_dict()
    b = run(_cfg(tmp_path / "b")).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_regression_run_reports_r2(tmp_path):
    cfg = _cfg(tmp_path, data={"name": "diabetes"}, training={"epochs": 2})
    result = run(cfg)
    assert set(result.results["test"]) >= {"loss", "mse", "mae", "r2"}


def test_resume_continues_to_same_weights(tmp_path):
    full = run(_cfg(tmp_path / "full", training={"epochs": 4}))
    part = _cfg(tmp_path / "part", training={"epochs": 2})
    run(part)
    resumed = run(_cfg(tmp_path / "part", training={"epochs": 4}), resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    epochs = [
        json.loads(line)["epoch"]
        for line in (tmp_path / "part" / "r" / "metrics.jsonl").read_text().splitlines()
        if '"type": "epoch"' in line
    ]
    assert epochs == [1, 2, 3, 4]


def test_lr_auto_records_the_chosen_lr(tmp_path):
    import yaml

    cfg = _cfg(tmp_path, optimizer={"lr": "auto"}, training={"epochs": 1})
    result = run(cfg)
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert isinstance(saved["optimizer"]["lr"], float) and saved["optimizer"]["lr"] > 0
    assert (tmp_path / "r" / "lr_find.png").exists()
    assert "Learning rate chosen by lr_find" in (tmp_path / "r" / "report.html").read_text()
    assert result.results["test"]["accuracy"] > 0.8


def test_schedule_drives_the_logged_lr(tmp_path):
    cfg = parse_config(
        {
            **_cfg(tmp_path, training={"epochs": 2}).model_dump(exclude_unset=True),
            "schedule": {"name": "cosine", "min_factor": 0.0},
            "callbacks": {"progress": False, "log_every": 1},
        }
    )
    run(cfg)
    steps = [
        json.loads(line)
        for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
        if '"type": "step"' in line
    ]
    lrs = [s["lr"] for s in steps]
    total = len(lrs)
    # cosine from 0.01 to 0 over the run's total steps: lr_t = 0.01 * (1 + cos(pi t / T)) / 2
    import math

    expected = [0.01 * (1 + math.cos(math.pi * t / total)) / 2 for t in range(total)]
    assert lrs == pytest.approx(expected, rel=1e-9, abs=1e-12)
