"""The finetune recipe end to end: gradwise checkpoints, run dirs, a tiny HF encoder, config errors."""

import json

import pytest
import torch

from gradwise import data as gdata
from gradwise import nn as gnn
from gradwise.config import parse_config
from gradwise.errors import ConfigError
from gradwise.finetune import load_source
from gradwise.finetune._config import FinetuneConfig, FinetuneDataConfig
from gradwise.recipes.finetune import load_parts, run
from gradwise.train import Checkpoint, Trainer

SOURCE = {"name": "digits", "classes": [0, 1, 2, 3, 4]}
TARGET = {"name": "digits", "classes": [5, 6, 7, 8, 9]}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """An MLP trained two epochs on digits 0-4, saved as gradwise checkpoints."""
    out = tmp_path_factory.mktemp("pretrain")
    parts, _ = gdata.standardize(load_parts(FinetuneDataConfig(**SOURCE), text=False))
    torch.manual_seed(0)
    net = gnn.MLP(64, [32], 5)
    trainer = Trainer(net, torch.optim.Adam(net.parameters(), lr=1e-2), gnn.multiclass(5),
                      epochs=2, batch_size=64, seed=0, callbacks=[Checkpoint(out, keep=1)])
    trainer.fit(parts.train.tensors())
    return out, trainer.evaluate(parts.test.tensors())


def _raw(tmp_path, ckpt, **over):
    raw = {
        "name": "ft",
        "runs_dir": str(tmp_path),
        "source": {"path": str(ckpt), "model": {"kind": "mlp", "hidden": [32]}},
        "data": {**TARGET, "max_train": 150},
        "source_data": SOURCE,
        "plan": {"kind": "gradual", "every": 1},
        "discriminative": {"factor": 2.6},
        "optimizer": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.01},
        "schedule": {"name": "slanted_triangular", "cut_frac": 0.25},
        "augment": {"seed": 0, "transforms": [{"name": "gaussian_noise", "std": 0.1},
                                              {"name": "mixup", "alpha": 0.2}]},
        "training": {"epochs": 3, "batch_size": 32, "seed": 0, "device": "cpu"},
        "callbacks": {"progress": False, "log_every": 1},
    }
    raw.update(over)
    return raw


def _config(tmp_path, ckpt, **over):
    return parse_config(_raw(tmp_path, ckpt, **over), FinetuneConfig)


def test_finetune_from_a_checkpoint_measures_forgetting(tmp_path, pretrained):
    ckpt, source_scores = pretrained
    result = run(_config(tmp_path, ckpt), progress=False)
    # "before" is the pretrained model on its own test split, scored independently
    assert result.results["source_before"]["accuracy"] == pytest.approx(source_scores["accuracy"])
    f = result.forgetting
    assert f["metric"] == "accuracy" and f["change"] == pytest.approx(f["after"] - f["before"])
    assert set(result.results) >= {"train", "val", "test", "source_before", "source_after"}
    assert result.results["test"]["accuracy"] > 0.5  # 5 classes: chance is 0.2
    run_dir = tmp_path / "ft"
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    events = [(r["epoch"], r["groups"]) for r in records if r.get("kind") == "unfreeze"]
    assert events == [(1, ["head"]), (2, ["block0", "head"])]
    page = (run_dir / "report.html").read_text()
    assert "Forgetting" in page and "plan stages" in page and "Mixup" in page
    from safetensors.torch import load_file

    weights = load_file(str(run_dir / "model.safetensors"))
    assert weights["head.weight"].shape == (5, 32)
    torch.testing.assert_close(weights["head.weight"], result.model.head.weight.detach())
    assert "fit_seconds" not in json.loads((run_dir / "results.json").read_text())  # repeatable only
    assert json.loads((run_dir / "timings.json").read_text())["fit_seconds"] > 0


def test_head_only_keeps_the_source_task_exactly(tmp_path, pretrained):
    ckpt, _ = pretrained
    cfg = _config(tmp_path, ckpt, plan={"kind": "head_only"}, augment=None, discriminative=None,
                  schedule=None, save_model=False)
    result = run(cfg, progress=False)
    assert result.forgetting["change"] == 0.0
    assert result.results["source_after"]["loss"] == result.results["source_before"]["loss"]
    assert not (tmp_path / "ft" / "model.safetensors").exists()


def test_lora_without_a_plan_trains_adapters_and_head_only(tmp_path, pretrained):
    ckpt, _ = pretrained
    base = load_source(ckpt, {"kind": "mlp", "hidden": [32]}).model
    raw = _raw(tmp_path, ckpt, augment=None, discriminative=None, schedule=None,
               lora={"r": 2, "alpha": 4, "target_modules": ["linear"]})
    del raw["plan"]
    result = run(parse_config(raw, FinetuneConfig), progress=False)
    layer = result.model.block0.linear
    assert torch.equal(layer.base_layer.weight, base.block0.linear.weight)  # frozen base
    assert layer.lora_B["default"].weight.abs().sum() > 0  # the adapter learned
    assert [e["train"] for e in result.history.events if e["kind"] == "unfreeze"] == [["lora", "top:1"]]


def test_source_from_a_train_run_directory(tmp_path):
    from gradwise.config import parse_config as parse_run
    from gradwise.recipes.train import run as train_run

    train_run(parse_run({
        "name": "src", "runs_dir": str(tmp_path), "data": {"name": "iris"},
        "model": {"hidden": [8]}, "training": {"epochs": 1, "device": "cpu"},
        "callbacks": {"progress": False},
    }), progress=False)  # fmt: skip
    source = load_source(tmp_path / "src")
    assert isinstance(source.model, gnn.MLP) and source.model.head.out_features == 3
    cfg = parse_config({
        "name": "ft", "runs_dir": str(tmp_path), "source": {"path": str(tmp_path / "src")},
        "data": {"name": "iris", "classes": ["virginica", "setosa"]},
        "training": {"epochs": 1, "device": "cpu"}, "callbacks": {"progress": False},
    }, FinetuneConfig)  # fmt: skip
    result = run(cfg, progress=False)
    assert result.model.head.out_features == 2 and result.forgetting is None


def test_bare_weights_need_a_model_spec(tmp_path, pretrained):
    ckpt, _ = pretrained
    with pytest.raises(ConfigError, match="give source.model"):
        load_source(ckpt)
    with pytest.raises(ConfigError, match="does not exist"):
        load_source(tmp_path / "missing")


def _tiny_hf_dir(path):
    transformers = pytest.importorskip("transformers")
    words = sorted({w.strip(".,").lower() for t in gdata.sentences().texts for w in t.split()})
    path.mkdir()
    vocab = path.parent / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", ".", *words]))
    tok = transformers.BertTokenizerFast(vocab_file=str(vocab))
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    transformers.BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_text_finetune_on_a_tiny_random_bert(tmp_path):
    model_dir = _tiny_hf_dir(tmp_path / "bert")
    cfg = parse_config({
        "name": "text", "runs_dir": str(tmp_path), "source": {"path": str(model_dir), "max_length": 24},
        "data": {"name": "sentences", "max_train": 48, "val": 0.1, "test": 0.1},
        "plan": {"kind": "gradual", "every": 1, "max_groups": 2},
        "discriminative": {"decay": 0.8, "head_lr": 1e-2},
        "optimizer": {"name": "adamw", "lr": 1e-3},
        "training": {"epochs": 2, "batch_size": 16, "device": "cpu"},
        "callbacks": {"progress": False},
    }, FinetuneConfig)  # fmt: skip
    result = run(cfg, progress=False)
    assert 0.0 <= result.results["test"]["accuracy"] <= 1.0
    events = [e for e in result.history.events if e["kind"] == "unfreeze"]
    assert [e["groups"] for e in events] == [["head"], ["encoder.encoder.layer.1", "head"]]
    emb = result.model.encoder.embeddings.word_embeddings.weight
    assert not emb.requires_grad  # beyond max_groups: never unfrozen
    with pytest.raises(ConfigError, match="bare encoder"):
        run(cfg.model_copy(update={"source_data": FinetuneDataConfig(name="sentences")}), progress=False)


def test_config_errors_name_the_field():
    base = {"source": {"path": "x"}, "data": {"name": "digits"}}
    with pytest.raises(ConfigError, match="plann: unknown field"):
        parse_config({**base, "plann": {}}, FinetuneConfig)
    with pytest.raises(ConfigError, match="first stage must start"):
        parse_config({**base, "plan": {"kind": "stages", "stages": [{"epoch": 2, "train": ["head"]}]}},
                     FinetuneConfig)
    with pytest.raises(ConfigError, match="apply to kind: gradual"):
        parse_config({**base, "plan": {"kind": "full", "every": 2}}, FinetuneConfig)
    with pytest.raises(ConfigError, match="unknown augmentation"):
        parse_config({**base, "augment": {"transforms": [{"name": "blur"}]}}, FinetuneConfig)
    with pytest.raises(ConfigError, match="lora_alpha"):
        parse_config({**base, "lora": {"r": 4, "lora_alpha": 8}}, FinetuneConfig)
    with pytest.raises(ConfigError, match="schedule.cut: unknown field"):
        parse_config({**base, "schedule": {"name": "slanted_triangular", "cut": 0.1}}, FinetuneConfig)
    with pytest.raises(ConfigError, match="lr 'auto'"):
        parse_config({**base, "optimizer": {"lr": "auto"}}, FinetuneConfig)
    with pytest.raises(ConfigError, match="unknown cnn model field"):
        parse_config({**base, "source": {"path": "x", "model": {"kind": "cnn", "widths": [3]}}},
                     FinetuneConfig)
    cfg = parse_config({**base, "lora": {"r": 4, "target_modules": ["linear"]}}, FinetuneConfig)
    assert cfg.lora["r"] == 4 and cfg.plan.to_plan().stages[0].train == ("all",)
