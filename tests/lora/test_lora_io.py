"""Adapter files: our files load in PEFT, PEFT's load in gradwise, errors name the key."""

from __future__ import annotations

import copy
import json
import os
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from gradwise.errors import CheckpointError
from gradwise.lora import LoRAConfig, inject, load_adapter, save_adapter, set_adapter

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.filterwarnings("ignore:LoRA adapter .* parameters:UserWarning")

MIXED_TARGETS = ["emb", "conv1", "conv2", "grouped", "proj"]


def _peft_load(base: nn.Module, directory) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.PeftModel.from_pretrained(copy.deepcopy(base), str(directory)).eval()


def _peft_save(base: nn.Module, directory, randomize_lora, **kwargs) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(**kwargs))
        randomize_lora(model, seed=5)
        model.save_pretrained(str(directory))
    return model.eval()


@pytest.mark.parametrize("bias", ["none", "lora_only", "all"])
def test_ours_loads_in_peft_and_back(mixed, ids, tmp_path, randomize_lora, bias):
    cfg = LoRAConfig(r=4, alpha=8, target_modules=MIXED_TARGETS, modules_to_save=["head"], bias=bias)
    ours = inject(copy.deepcopy(mixed), cfg)
    randomize_lora(ours)
    with torch.no_grad():
        ours.head.modules_to_save["default"].weight.mul_(3.0)
        for name, p in ours.named_parameters():
            if name.endswith("bias") and p.requires_grad:
                p.add_(0.5)
    y = ours(ids)
    save_adapter(ours, tmp_path)

    twin = _peft_load(mixed, tmp_path)
    torch.testing.assert_close(twin(ids), y, rtol=1e-5, atol=1e-5)
    again = load_adapter(copy.deepcopy(mixed), tmp_path)
    torch.testing.assert_close(again(ids), y, rtol=0, atol=0)
    assert again.conv1.r == {"default": 4} and again.head.adapters == ["default"]


def test_file_keys_and_config_match_peft(mixed, tmp_path, randomize_lora):
    kwargs = dict(r=4, target_modules=MIXED_TARGETS, modules_to_save=["head"], rank_pattern={"grouped": 2})
    _peft_save(mixed, tmp_path / "peft", randomize_lora, lora_alpha=8, **kwargs)
    ours = inject(copy.deepcopy(mixed), LoRAConfig(alpha=8, **kwargs))
    save_adapter(ours, tmp_path / "ours")

    theirs_t = load_file(str(tmp_path / "peft" / "adapter_model.safetensors"))
    ours_t = load_file(str(tmp_path / "ours" / "adapter_model.safetensors"))
    assert {k: v.shape for k, v in ours_t.items()} == {k: v.shape for k, v in theirs_t.items()}
    assert "base_model.model.emb.lora_embedding_A" in ours_t
    assert "base_model.model.proj.lora_A.weight" in ours_t and "base_model.model.head.weight" in ours_t

    theirs_c = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    ours_c = json.loads((tmp_path / "ours" / "adapter_config.json").read_text())
    for key, value in ours_c.items():
        expected = theirs_c[key]
        if key == "target_modules":
            value, expected = sorted(value), sorted(expected)
        assert value == expected, key


def test_peft_file_loads_into_gradwise(mixed, ids, tmp_path, randomize_lora):
    # PEFT's grouped-conv A mixes groups, which no mergeable adapter can hold; leave it out here.
    theirs = _peft_save(mixed, tmp_path, randomize_lora, r=4, lora_alpha=8, use_rslora=True,
                        target_modules=["emb", "conv1", "conv2", "proj"], modules_to_save=["head"],
                        bias="all")
    ours = load_adapter(copy.deepcopy(mixed), tmp_path)
    torch.testing.assert_close(ours(ids), theirs(ids), rtol=1e-5, atol=1e-5)
    assert ours.proj.scaling["default"] == pytest.approx(8 / 2)


def test_peft_grouped_conv_that_mixes_groups_is_refused(mixed, tmp_path, randomize_lora):
    _peft_save(mixed, tmp_path, randomize_lora, r=4, target_modules=["grouped"])
    with pytest.raises(CheckpointError, match=r"base_model\.model\.grouped\.lora_A\.weight.*mixes channels"):
        load_adapter(mixed, tmp_path)
    assert isinstance(mixed.grouped, nn.Conv2d)  # rolled back


@pytest.mark.parametrize("direction", ["ours_to_peft", "peft_to_ours"])
def test_gpt2_conv1d_round_trip(tiny_gpt2, tokens, tmp_path, randomize_lora, direction):
    base = tiny_gpt2()
    targets = ["c_attn", "c_proj", "c_fc"]
    if direction == "ours_to_peft":
        ours = inject(copy.deepcopy(base), LoRAConfig(r=4, alpha=8, target_modules=targets, task_type="CAUSAL_LM"))
        randomize_lora(ours, std=0.05)
        save_adapter(ours, tmp_path)
        assert json.loads((tmp_path / "adapter_config.json").read_text())["fan_in_fan_out"] is True
        other = _peft_load(base, tmp_path)
    else:
        other = _peft_save(base, tmp_path, lambda m, seed: randomize_lora(m, seed, std=0.05), r=4,
                           lora_alpha=8, target_modules=targets, fan_in_fan_out=True, task_type="CAUSAL_LM")
        ours = load_adapter(copy.deepcopy(base), tmp_path)
    out = ours(tokens).logits
    assert not torch.allclose(out, base(tokens).logits, atol=1e-3)
    torch.testing.assert_close(out, other(tokens).logits, rtol=1e-4, atol=1e-5)


def test_llama_all_linear_round_trip(tiny_llama, tokens, tmp_path, randomize_lora):
    base = tiny_llama()
    ours = inject(copy.deepcopy(base), LoRAConfig(r=2, target_modules="all-linear", task_type="CAUSAL_LM"))
    randomize_lora(ours, std=0.05)
    save_adapter(ours, tmp_path)
    torch.testing.assert_close(_peft_load(base, tmp_path)(tokens).logits, ours(tokens).logits,
                               rtol=1e-4, atol=1e-5)


def test_second_adapter_saved_and_loaded_by_name(mixed, ids, tmp_path, randomize_lora):
    model = inject(copy.deepcopy(mixed), LoRAConfig(r=2, target_modules=["proj"]), "a")
    inject(model, LoRAConfig(r=3, target_modules=["conv1", "proj"]), "b")
    randomize_lora(model)
    y_b = model(ids)
    save_adapter(model, tmp_path / "b")
    set_adapter(model, "a")
    y_a = model(ids)
    save_adapter(model, tmp_path / "a")
    assert set(load_file(str(tmp_path / "a" / "adapter_model.safetensors"))) == {
        "base_model.model.proj.lora_A.weight", "base_model.model.proj.lora_B.weight"}

    fresh = load_adapter(copy.deepcopy(mixed), tmp_path / "a", "a")
    load_adapter(fresh, tmp_path / "b", "b")
    torch.testing.assert_close(fresh(ids), y_b, rtol=0, atol=0)
    set_adapter(fresh, "a")
    torch.testing.assert_close(fresh(ids), y_a, rtol=0, atol=0)


# -- errors ------------------------------------------------------------------------------


@pytest.fixture
def saved(mixed, tmp_path, randomize_lora):
    model = inject(copy.deepcopy(mixed), LoRAConfig(r=4, target_modules=["conv1", "proj"]))
    randomize_lora(model)
    save_adapter(model, tmp_path)
    return tmp_path


def _edit_weights(directory, edit):
    path = directory / "adapter_model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


def test_missing_files_are_named(mixed, tmp_path, saved):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_adapter(mixed, tmp_path / "nope")
    (saved / "adapter_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="adapter_model.safetensors is missing"):
        load_adapter(mixed, saved)
    (saved / "adapter_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"adapter_config.json: not valid JSON \(line 1"):
        load_adapter(mixed, saved)
    (saved / "adapter_config.json").unlink()
    with pytest.raises(CheckpointError, match="adapter_config.json is missing"):
        load_adapter(mixed, saved)


def test_shape_mismatch_names_key_and_rolls_back(mixed, saved):
    _edit_weights(saved, lambda t: t.update({"base_model.model.proj.lora_B.weight": torch.zeros(16, 3)}))
    with pytest.raises(CheckpointError, match=r"base_model\.model\.proj\.lora_B\.weight: shape \(16, 3\) in "
                                              r"the file but \(16, 4\) in the model \(adapter rank r=4\)"):
        load_adapter(mixed, saved)
    assert isinstance(mixed.proj, nn.Linear) and not hasattr(mixed, "_gradwise_lora")


def test_unknown_and_missing_keys_are_named(mixed, saved):
    def add(t):
        t["base_model.model.porj.lora_A.weight"] = torch.zeros(4, 64)

    _edit_weights(saved, add)
    with pytest.raises(CheckpointError, match=r"unexpected key 'base_model\.model\.porj\.lora_A\.weight'.*"
                                              r"no LoRA module 'porj'.*did you mean 'proj'"):
        load_adapter(mixed, saved)
    _edit_weights(saved, lambda t: (t.pop("base_model.model.porj.lora_A.weight"),
                                    t.pop("base_model.model.conv1.lora_B.weight")))
    with pytest.raises(CheckpointError, match=r"key 'base_model\.model\.conv1\.lora_B\.weight' is missing"):
        load_adapter(mixed, saved)


def test_rank_mismatch_with_existing_adapter(mixed, saved):
    model = inject(copy.deepcopy(mixed), LoRAConfig(r=2, target_modules=["conv1", "proj"]))
    with pytest.raises(CheckpointError, match=r"r is 4 in the file but 2 in the model's adapter 'default'"):
        load_adapter(model, saved)


def test_existing_adapter_is_restored_after_a_bad_file(mixed, saved, ids):
    model = inject(copy.deepcopy(mixed), LoRAConfig(r=4, target_modules=["conv1", "proj"]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _edit_weights(saved, lambda t: t.update({"base_model.model.proj.lora_A.weight": torch.zeros(4, 3)}))
    with pytest.raises(CheckpointError, match="proj.lora_A.weight"):
        load_adapter(model, saved)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("peft_type", "IA3", "peft_type is 'IA3'"),
        ("use_dora", True, "use_dora=True is not supported"),
        ("init_lora_weights", "pissa", "init_lora_weights='pissa' is not supported"),
        ("bias", "some", "adapter_config.json: unknown bias 'some'"),
    ],
)
def test_config_fields_are_checked(mixed, saved, field, value, message):
    path = saved / "adapter_config.json"
    cfg = json.loads(path.read_text())
    cfg[field] = value
    path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=message):
        load_adapter(mixed, saved)


def test_writes_are_atomic(mixed, tmp_path, monkeypatch, randomize_lora):
    model = inject(copy.deepcopy(mixed), LoRAConfig(r=4, target_modules=["proj"]))
    save_adapter(model, tmp_path)
    good = (tmp_path / "adapter_model.safetensors").read_bytes()
    randomize_lora(model)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_adapter(model, tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "adapter_model.safetensors").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    save_adapter(model, tmp_path)  # overwriting an existing adapter works
    assert (tmp_path / "adapter_model.safetensors").read_bytes() != good
