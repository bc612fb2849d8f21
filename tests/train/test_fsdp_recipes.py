"""``training.distributed: fsdp`` in the recipes' configs: parsed, checked and passed to the Trainer."""

import importlib.util
from pathlib import Path

import pytest

from gradwise.config import parse_config
from gradwise.errors import ConfigError
from gradwise.train import FSDP
from gradwise.train._fsdp import trainer_mode

_spec = importlib.util.spec_from_file_location(
    "_test_fsdp", Path(__file__).with_name("test_fsdp.py")
)
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)
one_rank_group = common.one_rank_group


def test_config_values_map_to_trainer_arguments():
    assert trainer_mode("auto") == "auto"
    assert trainer_mode("off") is False
    assert trainer_mode("ddp") is True
    assert trainer_mode("fsdp") == "fsdp"
    assert trainer_mode({"fsdp": {"activation_checkpointing": True}}) == FSDP(
        activation_checkpointing=True
    )
    with pytest.raises(ConfigError, match="unknown option 'offload'; allowed: mixed_precision"):
        trainer_mode({"fsdp": {"offload": True}})
    with pytest.raises(ConfigError, match="must be one of auto, off, ddp, fsdp"):
        trainer_mode("zero3")


@pytest.mark.parametrize("section", ["finetune", "instruct", "train"])
def test_each_recipe_config_takes_the_field(section):
    from gradwise.config._run import TrainingConfig
    from gradwise.instruct._config import InstructTrainingConfig

    cls = InstructTrainingConfig if section == "instruct" else TrainingConfig
    cfg = cls(distributed={"fsdp": {"mixed_precision": "bf16"}})
    assert trainer_mode(cfg.distributed) == FSDP("bf16")
    assert cls().distributed == "auto"
    with pytest.raises(ValueError, match="training.distributed must be one of"):
        cls(distributed="sharded")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_finetune_with_fsdp_follows_the_plain_run(one_rank_group, tmp_path):
    """Gradual unfreezing under FSDP: the plan freezes the sharded parameters, by name."""
    import torch
    from safetensors.torch import load_file

    from gradwise import data as gdata
    from gradwise import nn as gnn
    from gradwise.finetune._config import FinetuneConfig, FinetuneDataConfig
    from gradwise.recipes.finetune import load_parts, run
    from gradwise.train import Checkpoint, Trainer

    ft = _load("_ft_recipe", Path(__file__).parents[1] / "finetune" / "test_finetune_recipe.py")
    parts, _ = gdata.standardize(load_parts(FinetuneDataConfig(**ft.SOURCE), text=False))
    torch.manual_seed(0)
    net = gnn.MLP(64, [32], 5)
    pre = Trainer(net, torch.optim.Adam(net.parameters(), lr=1e-2), gnn.multiclass(5), epochs=1,
                  batch_size=64, seed=0, callbacks=[Checkpoint(tmp_path / "pre", keep=1)])  # fmt: skip
    pre.fit(parts.train.tensors())
    out = {}
    for mode in ("off", "fsdp"):
        raw = ft._raw(tmp_path / mode, tmp_path / "pre", augment=None, discriminative=None)
        raw["training"] = {**raw["training"], "epochs": 2, "distributed": mode}
        out[mode] = run(parse_config(raw, FinetuneConfig), progress=False)
    a, b = out["off"], out["fsdp"]
    assert b.history.series("train_loss") == pytest.approx(a.history.series("train_loss"), rel=1e-6)
    assert b.results["test"]["loss"] == pytest.approx(a.results["test"]["loss"], rel=1e-6)
    # the saved weights are the full ones, gathered from the shards
    wa, wb = (load_file(r.run_dir / "model.safetensors") for r in (a, b))
    assert set(wa) == set(wb)
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6)


def test_instruct_lora_with_fsdp_follows_the_plain_run(one_rank_group, tmp_path):
    import torch
    from safetensors.torch import load_file

    from gradwise.instruct import Example, InstructConfig, write_jsonl
    from gradwise.recipes.instruct import sft

    conf = _load("_instruct_conftest", Path(__file__).parents[1] / "instruct" / "conftest.py")
    from gradwise.instruct._base import train_tokenizer
    from gradwise.instruct._tasks import corpus

    torch.manual_seed(0)
    tok = train_tokenizer(corpus(100, seed=0) + conf._EXTRA, vocab_size=300)
    base = tmp_path / "base"
    conf.make_model(tok, "llama", hidden=32, layers=2, heads=2, seed=1).save_pretrained(base)
    tok.save_pretrained(base)
    pairs = [("Reverse the word: CAT", "TAC"), ("What is 2 plus 3?", "5"), ("Spell: DOG", "D-O-G")]
    write_jsonl([Example.from_alpaca(q, a) for q, a in pairs], tmp_path / "train.jsonl")
    out = {}
    for mode in ("off", "fsdp"):
        raw = {
            "name": mode, "runs_dir": str(tmp_path), "model": {"path": str(base)},
            "data": {"train": str(tmp_path / "train.jsonl"), "template": "chatml",
                     "max_length": 48, "packing": False},
            "lora": {"r": 4, "alpha": 8}, "optimizer": {"lr": 1e-2, "warmup": 0.0},
            "training": {"epochs": 3, "batch_size": 3, "device": "cpu", "progress": False,
                         "checkpoint": False, "distributed": mode},
            "eval": {"max_new_tokens": 2, "before": False}, "save": "adapter",
        }  # fmt: skip
        out[mode] = sft(parse_config(raw, InstructConfig), progress=False)
    a, b = out["off"], out["fsdp"]
    la, lb = (r.history.series("train_loss") for r in (a, b))
    assert len(la) == 3 and lb == pytest.approx(la, rel=1e-6)
    fa, fb = (load_file(r.run_dir / "adapter" / "adapter_model.safetensors") for r in (a, b))
    assert set(fa) == set(fb) and fa
    for k in fa:
        torch.testing.assert_close(fb[k], fa[k], rtol=1e-5, atol=1e-6)
