"""Outputs and gradients equal PEFT's for the same adapter weights."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gradwise.lora import LoRAConfig, inject

pytestmark = pytest.mark.filterwarnings("ignore:LoRA adapter .* parameters:UserWarning")

LAYERS = {
    "linear": (lambda: nn.Linear(6, 5), lambda: torch.randn(4, 3, 6)),
    "linear_nobias": (lambda: nn.Linear(6, 5, bias=False), lambda: torch.randn(4, 6)),
    "conv2d": (lambda: nn.Conv2d(3, 6, 3, stride=2, padding=1), lambda: torch.randn(2, 3, 9, 9)),
    "conv2d_1x1": (lambda: nn.Conv2d(3, 6, 1), lambda: torch.randn(2, 3, 5, 5)),
    "conv1d": (lambda: nn.Conv1d(4, 6, 3, padding=2), lambda: torch.randn(2, 4, 11)),
    "conv3d": (lambda: nn.Conv3d(2, 3, 3, padding=1), lambda: torch.randn(1, 2, 4, 5, 5)),
    "embedding": (
        lambda: nn.Embedding(20, 8, padding_idx=0),
        lambda: torch.randint(0, 20, (3, 7)),
    ),
}


@pytest.mark.parametrize("use_rslora", [False, True])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_outputs_and_grads_equal_peft(kind, use_rslora, peft_twin, randomize_lora):
    make_layer, make_x = LAYERS[kind]
    torch.manual_seed(0)
    base = nn.Sequential(make_layer())
    x = make_x()
    ours = inject(copy.deepcopy(base), LoRAConfig(r=4, alpha=6, target_modules=["0"], use_rslora=use_rslora))
    randomize_lora(ours)
    twin = peft_twin(base, ours, r=4, lora_alpha=6, target_modules=["0"], use_rslora=use_rslora)

    y_ours, y_peft = ours(x), twin(x)
    torch.testing.assert_close(y_ours, y_peft, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(y_ours, base(x), atol=1e-3)  # the adapter is really in play

    y_ours.square().sum().backward()
    y_peft.square().sum().backward()
    grads_peft = {k.removeprefix("base_model.model."): p.grad for k, p in twin.named_parameters() if p.grad is not None}
    grads_ours = {k: p.grad for k, p in ours.named_parameters() if p.grad is not None}
    assert set(grads_ours) == set(grads_peft) and grads_ours
    for k in grads_ours:
        torch.testing.assert_close(grads_ours[k], grads_peft[k], rtol=1e-4, atol=1e-6)


def test_rank_and_alpha_patterns_equal_peft(peft_twin, randomize_lora):
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 4))
    kwargs = dict(r=4, target_modules=["0", "2", "4"], rank_pattern={"2": 2}, alpha_pattern={"4": 3})
    ours = inject(copy.deepcopy(base), LoRAConfig(alpha=8, **kwargs))
    assert [ours[i].r["default"] for i in (0, 2, 4)] == [4, 2, 4]
    assert [ours[i].scaling["default"] for i in (0, 2, 4)] == [2.0, 4.0, 0.75]
    randomize_lora(ours)
    twin = peft_twin(base, ours, lora_alpha=8, **kwargs)
    x = torch.randn(5, 8)
    torch.testing.assert_close(ours(x), twin(x), rtol=1e-5, atol=1e-6)


def test_gpt2_conv1d_equals_peft(tiny_gpt2, tokens, peft_twin, randomize_lora):
    base = tiny_gpt2()
    ours = inject(copy.deepcopy(base), LoRAConfig(r=4, alpha=8, target_modules=["c_attn", "c_proj"]))
    assert type(ours.transformer.h[0].attn.c_attn).__name__ == "LoRALinear"
    assert ours.transformer.h[0].attn.c_attn.fan_in_fan_out
    randomize_lora(ours, std=0.05)
    twin = peft_twin(base, ours, r=4, lora_alpha=8, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True)
    torch.testing.assert_close(ours(tokens).logits, twin(tokens).logits, rtol=1e-4, atol=1e-5)


def test_all_linear_wraps_what_peft_wraps(tiny_llama, tokens, peft_twin, randomize_lora):
    from gradwise.lora._inject import lora_layers

    base = tiny_llama()
    ours = inject(copy.deepcopy(base), LoRAConfig(r=2, target_modules="all-linear"))
    randomize_lora(ours, std=0.05)
    twin = peft_twin(base, ours, r=2, lora_alpha=16, target_modules="all-linear")
    peft_paths = {n.removeprefix("base_model.model.") for n, m in twin.named_modules() if hasattr(m, "lora_A")}
    ours_paths = {p for p, _ in lora_layers(ours)}
    assert ours_paths == peft_paths
    assert "lm_head" not in ours_paths and len(ours_paths) == 2 * 7
    torch.testing.assert_close(ours(tokens).logits, twin(tokens).logits, rtol=1e-4, atol=1e-5)
