"""Merging, disabling, switching, training and the injection rules."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gradwise.errors import ConfigError
from gradwise.lora import (
    LoRAConfig,
    ModulesToSave,
    delete_adapter,
    disabled,
    inject,
    merge,
    set_adapter,
    trainable_parameters,
    unload,
    unmerge,
)

pytestmark = pytest.mark.filterwarnings("ignore:LoRA adapter .* parameters:UserWarning")

CONVS = {
    "conv2d": (lambda: nn.Conv2d(4, 6, 3, padding=1), (2, 4, 7, 7)),
    "grouped": (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (2, 4, 7, 7)),
    "depthwise": (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4), (2, 4, 7, 7)),
    "dilated_reflect": (
        lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, padding_mode="reflect"), (2, 4, 7, 7)
    ),
    "circular_1d": (lambda: nn.Conv1d(4, 6, 5, padding=2, padding_mode="circular"), (2, 4, 9)),
    "conv3d_grouped": (lambda: nn.Conv3d(4, 4, 3, padding=1, groups=2), (1, 4, 3, 4, 4)),
    "linear": (lambda: nn.Linear(6, 5), (3, 2, 6)),
}


def _single(kind):
    make, shape = CONVS[kind]
    torch.manual_seed(0)
    return nn.Sequential(make()), torch.randn(shape)


@pytest.mark.parametrize("kind", list(CONVS))
def test_fresh_adapter_is_exact_noop_and_merge_round_trips(kind, randomize_lora):
    base, x = _single(kind)
    w0 = base[0].weight.detach().clone()
    y_base = base(x)
    model = inject(copy.deepcopy(base), LoRAConfig(r=4, target_modules=["0"]))
    assert torch.equal(model(x), y_base)  # B = 0: bit-for-bit the base model

    randomize_lora(model)
    y_lora = model(x)
    assert not torch.allclose(y_lora, y_base, atol=1e-3)
    merge(model)
    assert model[0].merged_adapter == "default"
    torch.testing.assert_close(model(x), y_lora, rtol=1e-5, atol=1e-5)
    # merged forward is the base layer alone, with the updated weight
    torch.testing.assert_close(model[0].base_layer(x), model(x), rtol=0, atol=0)
    merge(model)  # idempotent
    torch.testing.assert_close(model(x), y_lora, rtol=1e-5, atol=1e-5)
    unmerge(model)
    torch.testing.assert_close(model[0].base_layer.weight, w0, rtol=0, atol=1e-6)
    torch.testing.assert_close(model(x), y_lora, rtol=1e-5, atol=1e-5)


def test_grouped_delta_is_block_diagonal_per_group(randomize_lora):
    model = inject(nn.Sequential(nn.Conv2d(4, 6, 3, groups=2)), LoRAConfig(r=4, alpha=4, target_modules=["0"]))
    randomize_lora(model)
    layer = model[0]
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight  # (4, 2, 3, 3), (6, 2, 1, 1)
    delta = layer.delta_weight("default")
    # group 1: outputs 3..5 see r-channels 2..3 and input channels 2..3 (its own block)
    expected = torch.einsum("or,rikl->oikl", b[3:, :, 0, 0], a[2:])
    torch.testing.assert_close(delta[3:], expected)


def test_embedding_merge_and_padding_row(randomize_lora):
    torch.manual_seed(0)
    base = nn.Sequential(nn.Embedding(12, 6, padding_idx=0))
    ids = torch.tensor([[0, 3, 5], [7, 0, 11]])
    model = inject(copy.deepcopy(base), LoRAConfig(r=3, target_modules=["0"]))
    assert torch.equal(model(ids), base(ids))
    randomize_lora(model)
    y = model(ids)
    merge(model)
    torch.testing.assert_close(model(ids), y, rtol=1e-5, atol=1e-6)


def test_disabled_gives_base_outputs_exactly(mixed, ids, randomize_lora):
    y_base = mixed(ids)
    model = inject(copy.deepcopy(mixed), LoRAConfig(r=2, target_modules=["emb", "conv1", "conv2", "proj"],
                                                    modules_to_save=["head"]))
    randomize_lora(model)
    with torch.no_grad():
        model.head.modules_to_save["default"].weight.add_(1.0)
    y_lora = model(ids)
    with disabled(model):
        assert torch.equal(model(ids), y_base)
    torch.testing.assert_close(model(ids), y_lora, rtol=0, atol=0)

    merge(model)
    with disabled(model):
        torch.testing.assert_close(model(ids), y_base, rtol=1e-5, atol=1e-5)
    assert model.proj.merged_adapter == "default"  # merged again after the block
    torch.testing.assert_close(model(ids), y_lora, rtol=1e-5, atol=1e-5)


def test_several_adapters_switch(mixed, ids, randomize_lora):
    cfg_a = LoRAConfig(r=2, target_modules=["conv1", "proj"])
    cfg_b = LoRAConfig(r=3, target_modules=["proj", "head"])
    only_a = inject(copy.deepcopy(mixed), cfg_a, "a")
    randomize_lora(only_a, seed=1)
    only_b = inject(copy.deepcopy(mixed), cfg_b, "b")
    randomize_lora(only_b, seed=2)

    both = inject(copy.deepcopy(mixed), cfg_a, "a")
    inject(both, cfg_b, "b")
    assert both.proj.adapters == ["a", "b"] and both.conv1.adapters == ["a"]
    sd = {**only_a.state_dict(), **only_b.state_dict()}
    both.load_state_dict({k: v for k, v in sd.items() if "lora_" in k}, strict=False)

    assert both.proj.active_adapter == "b"  # the adapter injected last is active
    torch.testing.assert_close(both(ids), only_b(ids), rtol=0, atol=0)
    set_adapter(both, "a")
    torch.testing.assert_close(both(ids), only_a(ids), rtol=0, atol=0)
    trainable = {n for n, p in both.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in both.named_parameters() if ".a." in n}

    merge(both)
    set_adapter(both, "b")  # a merged model stays merged, with the new adapter
    assert both.proj.merged_adapter == "b" and both.conv1.merged_adapter is None
    torch.testing.assert_close(both(ids), only_b(ids), rtol=1e-5, atol=1e-5)
    unmerge(both)
    torch.testing.assert_close(both.proj.base_layer.weight, mixed.proj.weight, rtol=0, atol=1e-6)

    delete_adapter(both, "a")
    assert isinstance(both.conv1, nn.Conv1d) and both.proj.adapters == ["b"]
    with pytest.raises(ConfigError, match="unknown adapter 'c'"):
        set_adapter(both, "c")


@pytest.mark.parametrize("bias", ["none", "lora_only", "all"])
def test_training_step_changes_only_adapter_params(mixed, ids, bias):
    model = inject(copy.deepcopy(mixed), LoRAConfig(r=2, target_modules=["conv2", "proj"], bias=bias,
                                                    modules_to_save=["head"]))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):  # two steps: B is zero at first, so A only moves on the second
        opt.zero_grad()
        model(ids).square().mean().backward()
        opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    lora = {n for n in before if ".lora_" in n}
    head = {n for n in before if "modules_to_save.default" in n}
    expected = lora | head
    if bias == "lora_only":
        expected |= {"conv2.base_layer.bias", "proj.base_layer.bias"}
    elif bias == "all":
        expected |= {n for n in before if n.endswith("bias") and "original_module" not in n}
    assert changed == expected
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == expected  # the frozen original head stays frozen


def test_trainable_parameters_counts_and_prints(capsys):
    net = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 10))
    inject(net, LoRAConfig(r=2, target_modules=["0"]))
    count = trainable_parameters(net)
    assert count == (2 * 10 + 10 * 2, 2 * 110 + 40)
    assert count.fraction == pytest.approx(40 / 260)
    assert "trainable params: 40 || all params: 260" in capsys.readouterr().out


def test_unload_gives_plain_modules(mixed, ids, randomize_lora):
    model = inject(copy.deepcopy(mixed), LoRAConfig(r=2, target_modules=["conv1", "proj"],
                                                    modules_to_save=["head"]))
    randomize_lora(model)
    y = model(ids)
    plain = unload(model)
    assert type(plain.conv1) is nn.Conv1d and type(plain.head) is nn.Linear
    torch.testing.assert_close(plain(ids), y, rtol=1e-5, atol=1e-5)
    assert [n for n, _ in plain.named_parameters()] == [n for n, _ in mixed.named_parameters()]


def test_wrapper_passes_attributes_through():
    model = inject(nn.Sequential(nn.Linear(6, 4)), LoRAConfig(r=2, target_modules=["0"]))
    assert model[0].in_features == 6 and model[0].weight is model[0].base_layer.weight
    model = inject(nn.Sequential(nn.Linear(6, 4), nn.Linear(4, 2)),
                   LoRAConfig(target_modules=["0"], modules_to_save=["1"]))
    assert isinstance(model[1], ModulesToSave) and model[1].out_features == 2


def test_warns_when_adapter_outgrows_layer():
    with pytest.warns(UserWarning, match=r"on '0' has 36 parameters, more than the 18"):
        inject(nn.Sequential(nn.Linear(3, 6, bias=False)), LoRAConfig(r=4, target_modules=["0"]))


def test_depthwise_rank_must_be_multiple_of_groups():
    with pytest.raises(ConfigError, match=r"r=2 for '0'.*groups=4.*rank_pattern"):
        inject(nn.Sequential(nn.Conv2d(4, 4, 3, groups=4)), LoRAConfig(r=2, target_modules=["0"]))


def test_injection_errors(mixed):
    with pytest.raises(ConfigError, match=r"matched no module.*did you mean 'proj'"):
        inject(mixed, LoRAConfig(target_modules=["prj"]))
    with pytest.raises(ConfigError, match=r"matched 'act' of type Tanh, which LoRA cannot wrap"):
        inject(nn.ModuleDict({"act": nn.Tanh()}), LoRAConfig(target_modules=["act"]))
    with pytest.raises(ConfigError, match="modules_to_save: no module named 'haed'.*'head'"):
        inject(mixed, LoRAConfig(target_modules=["proj"], modules_to_save=["haed"]))
    assert isinstance(mixed.proj, nn.Linear)  # a failed inject leaves the model as it was
    inject(mixed, LoRAConfig(target_modules=["proj"]))
    with pytest.raises(ConfigError, match="adapter 'default' already exists"):
        inject(mixed, LoRAConfig(target_modules=["proj"]))
    merge(mixed)
    with pytest.raises(ConfigError, match="unmerge"):
        inject(mixed, LoRAConfig(target_modules=["proj"]), "other")
    with pytest.raises(ConfigError, match="no LoRA adapters"):
        merge(nn.Linear(2, 2))


def test_regex_and_exclude_targets(mixed):
    model = inject(copy.deepcopy(mixed), LoRAConfig(target_modules=r"(conv\d|proj)", exclude_modules=["conv2"]))
    wrapped = sorted(n for n, m in model.named_modules() if hasattr(m, "lora_A"))
    assert wrapped == ["conv1", "proj"]


def test_merge_refuses_tied_weights(tiny_gpt2, tokens):
    model = tiny_gpt2()
    assert model.transformer.wte.weight is model.lm_head.weight
    inject(model, LoRAConfig(r=2, target_modules=["wte", "c_attn"]))
    with pytest.raises(ConfigError, match=r"cannot merge into 'transformer\.wte'.*tied to lm_head\.weight"):
        merge(model)
    assert model.transformer.h[0].attn.c_attn.merged_adapter is None  # nothing merged


def test_hooks_on_a_wrapper_fire_also_when_merged():
    model = inject(nn.Sequential(nn.Linear(8, 8)), LoRAConfig(r=2, target_modules=["0"]))
    calls = []
    model[0].register_forward_hook(lambda mod, inp, out: calls.append(out.shape))
    merge(model)
    model(torch.randn(3, 8))
    with disabled(model):
        model(torch.randn(3, 8))
    assert calls == [torch.Size([3, 8])] * 2


def test_injected_model_pickles_and_deep_copies(mixed, ids, randomize_lora):
    import pickle

    model = inject(copy.deepcopy(mixed), LoRAConfig(r=2, target_modules=["conv1", "proj"],
                                                    modules_to_save=["head"]))
    randomize_lora(model)
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        torch.testing.assert_close(clone(ids), model(ids), rtol=0, atol=0)
        merge(clone)  # the adapter state travels with the copy
        torch.testing.assert_close(clone(ids), model(ids), rtol=1e-5, atol=1e-5)
