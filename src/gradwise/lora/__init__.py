"""LoRA adapters on plain ``torch.nn`` modules, in PEFT's file format.

A LoRA adapter keeps a pretrained weight ``W`` frozen and learns a low-rank
update ``ΔW = (alpha/r)·B·A`` (Hu et al., 2021). `inject` wraps the target
layers (``nn.Linear``, ``nn.Embedding``, ``nn.Conv1d/2d/3d``, Hugging Face's
``Conv1D``); `merge`/`unmerge` fold the update in and out; `save_adapter` /
`load_adapter` read and write PEFT's ``adapter_config.json`` +
``adapter_model.safetensors``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from gradwise.lora import LoRAConfig, inject, merge
    >>> net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> _ = inject(net, LoRAConfig(r=2, alpha=4, target_modules=["0"]))
    >>> x = torch.randn(3, 8)
    >>> before = net(x)
    >>> _ = merge(net)
    >>> torch.allclose(net(x), before)
    True
"""

from gradwise.lora._config import LoRAConfig
from gradwise.lora._conv import LoRAConv
from gradwise.lora._inject import DISPATCHERS, inject
from gradwise.lora._io import load_adapter, save_adapter
from gradwise.lora._layers import LoRAEmbedding, LoRALayer, LoRALinear
from gradwise.lora._model import (
    ParameterCount,
    delete_adapter,
    disabled,
    merge,
    set_adapter,
    trainable_parameters,
    unload,
    unmerge,
)
from gradwise.lora._modules_to_save import ModulesToSave

__all__ = [
    "DISPATCHERS",
    "LoRAConfig",
    "LoRAConv",
    "LoRAEmbedding",
    "LoRALayer",
    "LoRALinear",
    "ModulesToSave",
    "ParameterCount",
    "delete_adapter",
    "disabled",
    "inject",
    "load_adapter",
    "merge",
    "save_adapter",
    "set_adapter",
    "trainable_parameters",
    "unload",
    "unmerge",
]
