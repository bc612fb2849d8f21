"""Whole-model operations: switch, merge, unmerge, disable, count, unload."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from torch import nn

from gradwise.errors import unknown
from gradwise.lora._config import LoRAConfig  # noqa: F401  (used by the doctests)
from gradwise.lora._inject import (
    _set_submodule,
    inject,  # noqa: F401  (used by the doctests)
)
from gradwise.lora._layers import LoRALayer
from gradwise.lora._state import _STATE_ATTR, lora_layers, require_state, saved_modules
from gradwise.lora._switch import _check_untied, merge, set_adapter, unmerge

__all__ = [
    "ParameterCount", "delete_adapter", "disabled", "merge", "set_adapter", "trainable_parameters",
    "unload", "unmerge",
]  # fmt: skip


@contextmanager
def disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Run the base model inside the ``with`` block: every adapter is skipped.

    Unmerged adapters are skipped outright, so outputs equal the base model's
    exactly. A merged adapter is taken out for the block and merged back
    after it (the base weights are then restored to float32 round-off).
    Trained biases (``bias="all"``/``"lora_only"``) live in the base layers and
    stay in effect.

    >>> net = nn.Sequential(nn.Linear(4, 4))
    >>> _ = inject(net, LoRAConfig(r=2, target_modules=["0"]))
    >>> with disabled(net):
    ...     pass
    """
    require_state(model)
    layers = [layer for _, layer in lora_layers(model)]
    merged = [layer for layer in layers if layer.merged_adapter]
    for layer in merged:
        layer.unmerge()
    modules = [*layers, *(m for _, m in saved_modules(model))]
    for module in modules:
        module.set_disabled(True)
    try:
        yield model
    finally:
        for module in modules:
            module.set_disabled(False)
        for layer in merged:
            layer.merge()


class ParameterCount(NamedTuple):
    """Trainable and total parameter counts; ``fraction`` is their ratio."""

    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0


def trainable_parameters(model: nn.Module, verbose: bool = True) -> ParameterCount:
    """Count trainable and total parameters (shared tensors once); print them if ``verbose``.

    >>> net = nn.Sequential(nn.Linear(10, 10))
    >>> _ = inject(net, LoRAConfig(r=2, target_modules=["0"]))
    >>> trainable_parameters(net, verbose=False)
    ParameterCount(trainable=40, total=150)
    """
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    count = ParameterCount(trainable, total)
    if verbose:
        print(
            f"trainable params: {trainable:,} || all params: {total:,} || "
            f"trainable%: {100 * count.fraction:.4f}"
        )
    return count


def delete_adapter(model: nn.Module, adapter_name: str) -> nn.Module:
    """Remove adapter ``adapter_name``; a layer left without adapters becomes its base layer again.

    If it was the active adapter, no adapter is active afterwards (the model
    runs as the base model) until `set_adapter` picks another.
    """
    state = require_state(model)
    if adapter_name not in state.configs:
        raise unknown("adapter", str(adapter_name), state.configs)
    for path, module in [*lora_layers(model), *saved_modules(model)]:
        if adapter_name not in module.adapters:
            continue
        module.delete_adapter(adapter_name)
        if not module.adapters:
            base = module.base_layer if isinstance(module, LoRALayer) else module.original_module
            _set_submodule(model, path, base)
    del state.configs[adapter_name]
    if state.active == adapter_name:
        state.active = None
    if not state.configs:
        del model.__dict__[_STATE_ATTR]
    return model


def unload(model: nn.Module, merge_adapter: bool = True) -> nn.Module:
    """Remove every wrapper, leaving plain layers; with ``merge_adapter`` the active adapter is kept in the weights.

    ``modules_to_save`` wrappers give back the active adapter's trained copy
    (with ``merge_adapter``) or the original module. The result has no LoRA
    state and runs exactly like the base architecture.
    """
    require_state(model)
    if merge_adapter:
        _check_untied(model)
    for path, layer in list(lora_layers(model)):
        if merge_adapter:
            layer.merge()
        else:
            layer.unmerge()
        _set_submodule(model, path, layer.base_layer)
    for path, wrapper in list(saved_modules(model)):
        kept = wrapper.current() if merge_adapter else wrapper.original_module
        _set_submodule(model, path, kept)
    del model.__dict__[_STATE_ATTR]
    return model

