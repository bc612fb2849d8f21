"""The LoRA pass-through shortcut must never skip a hook: the one use of torch's hook internals."""

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from gradwise.lora import LoRAConfig, inject, merge
from gradwise.lora._layers import GLOBAL_HOOK_DICTS, global_hooks_registered


def test_torch_still_keeps_global_hooks_where_gradwise_reads_them():
    missing = [n for n in GLOBAL_HOOK_DICTS if not isinstance(getattr(torch_module, n, None), dict)]
    assert not missing, (
        f"torch {torch.__version__} no longer has torch.nn.modules.module.{', '.join(missing)}; "
        "update gradwise.lora._layers.global_hooks_registered"
    )


def test_a_public_global_hook_fires_on_a_merged_lora_layer():
    net = nn.Sequential(nn.Linear(3, 3))
    inject(net, LoRAConfig(r=2, target_modules=["0"]))
    merge(net)  # merged: the wrapper would otherwise hand the call straight to the base layer
    called = []
    handle = torch_module.register_module_forward_hook(lambda m, i, o: called.append(type(m).__name__))
    try:
        assert global_hooks_registered()
        net(torch.randn(2, 3))
    finally:
        handle.remove()
    assert not global_hooks_registered()
    assert "LoRALinear" in called  # the wrapper itself went through Module.__call__
