import json

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
