"""Whole-model operations: switch, merge, unmerge, disable, count, unload."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from torch import nn

from gradwise.errors import ConfigError, unknown
from gradwise.lora._config import LoRAConfig  # noqa: F401  (used by the doctests)
from gradwise.lora._inject import (
    _STATE_ATTR,
    _set_submodule,
    inject,  # noqa: F401  (used by the doctests)
    lora_layers,
    require_state,
    saved_modules,
)
from gradwise.lora._layers import LoRALayer


def _is_bias(name: str) -> bool:
    return name == "bias" or name.endswith(".bias")


def set_adapter(model: nn.Module, adapter_name: str) -> nn.Module:
    """Make ``adapter_name`` the adapter the model runs and trains.

    The active adapter's factors (and ``modules_to_save`` copies) train; the
    other adapters' are frozen. Biases follow the active adapter's
    ``bias`` setting. If an adapter is merged, it is unmerged and the new
    one merged in its place, so a merged model stays merged.

    >>> net = nn.Sequential(nn.Linear(4, 4))
    >>> _ = inject(net, LoRAConfig(r=2, target_modules=["0"]), "a")
    >>> _ = inject(net, LoRAConfig(r=2, target_modules=["0"]), "b")
    >>> _ = set_adapter(net, "a"); net[0].active_adapter
    'a'
    """
    state = require_state(model)
    if adapter_name not in state.configs:
        raise unknown("adapter", str(adapter_name), state.configs)
    layers = [layer for _, layer in lora_layers(model)]
    was_merged = any(layer.merged_adapter for layer in layers)
    if was_merged:
        unmerge(model)
    for _, module in [*lora_layers(model), *saved_modules(model)]:
        module.set_active(adapter_name)
        for name in module.adapters:
            for p in module.adapter_parameters(name):
                p.requires_grad_(name == adapter_name)
    if any(c.bias != "none" for c in state.configs.values()):
        _set_bias_flags(model, state.configs[adapter_name].bias)
    state.active = adapter_name
    if was_merged:
        merge(model)
    return model


def _set_bias_flags(model: nn.Module, bias: str) -> None:
    keep = set()
    if bias == "lora_only":
        keep = {id(layer.base_layer.bias) for _, layer in lora_layers(model)
                if getattr(layer.base_layer, "bias", None) is not None}
    # Adapter factors and modules_to_save (copies and frozen originals) keep their own flags.
    managed = {id(p) for _, layer in lora_layers(model) for n in layer.adapters
               for p in layer.adapter_parameters(n)}
    managed |= {id(p) for _, wrapper in saved_modules(model) for p in wrapper.parameters()}
    for name, p in model.named_parameters():
        if not _is_bias(name) or id(p) in managed:
            continue
        p.requires_grad_(bias == "all" or id(p) in keep)


def merge(model: nn.Module) -> nn.Module:
    """Fold the active adapter into the base weights: ``W ← W + s·B·A`` per layer.

    The merged model runs exactly the base layers, so inference costs nothing
    extra; its outputs equal the unmerged ones to float32 round-off. Merging
    twice is a no-op. Merge for inference; train unmerged.
    """
    require_state(model)
    _check_untied(model)
    for _, layer in lora_layers(model):
        layer.merge()
    return model


def _check_untied(model: nn.Module) -> None:
    """Refuse to merge into a weight that another module shares (tied embeddings)."""
    names: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    for path, layer in lora_layers(model):
        if layer.active_adapter not in layer.adapters or layer.merged_adapter:
            continue
        own = f"{path}.base_layer.weight"
        shared = [n for n in names.get(id(layer.base_layer.weight), []) if n != own]
        if shared:
            raise ConfigError(
                f"cannot merge into {path!r}: its weight is tied to {', '.join(shared)}, so merging "
                "would change those modules too; keep this adapter unmerged or untie the weights"
            )


def unmerge(model: nn.Module) -> nn.Module:
    """Take merged adapters back out of the base weights: ``W ← W − s·B·A``."""
    require_state(model)
    for _, layer in lora_layers(model):
        layer.unmerge()
    return model


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

