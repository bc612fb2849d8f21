"""The PEFT layout of a model's LoRA adapter, by name only: what a sharded checkpoint records.

A DCP checkpoint (``train._dcp``) stores it beside the shards, so that
``gradwise export`` (``train._export``) can write the adapter's PEFT files
from the consolidated weights without the model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gradwise.errors import CheckpointError


def adapter_layout(model: nn.Module) -> dict[str, Any] | None:
    """The PEFT files of the model's active LoRA adapter, as keys into ``model.state_dict()``.

    Returns ``{"config": adapter_config.json as a dict, "keys": {PEFT key:
    state-dict key}}``, or None without adapters. Only names are read, so it
    works on a sharded model; :func:`export_checkpoint` fills the tensors.
    """
    from gradwise.lora._io import _entries, _peft_config
    from gradwise.lora._state import get_state

    for prefix, owner in model.named_modules():
        state = get_state(owner)
        if state is None or not state.configs:
            continue
        name = state.active
        if name is None:
            continue
        config = state.configs[name]
        base = getattr(getattr(owner, "config", None), "name_or_path", None) or None
        entries, layers = _entries(owner, name, config)
        tensors: dict[str, torch.Tensor] = {}
        for peft_prefix, layer in layers:
            for suffix, t in layer.file_tensors(name).items():
                tensors[peft_prefix + suffix] = t
        for key, entry in entries.items():
            if entry is not None:
                tensors[key] = entry[0]()
        where = {id(t): k for k, t in owner.state_dict(keep_vars=True).items()}
        keys = {}
        for peft_key, t in tensors.items():
            if id(t) not in where:
                raise CheckpointError(
                    f"LoRA layer tensor {peft_key!r} is not a model tensor (a grouped "
                    "convolution's dense layout); export the adapter with "
                    "gradwise.lora.save_adapter on the loaded model"
                )
            keys[peft_key] = f"{prefix}.{where[id(t)]}" if prefix else where[id(t)]
        return {"config": _peft_config(owner, name, config, base), "keys": keys}
    return None
