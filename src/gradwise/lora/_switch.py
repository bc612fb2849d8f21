"""Which adapter runs: switch, merge and unmerge (the model's trainable flags follow)."""

from __future__ import annotations

from torch import nn

from gradwise.errors import ConfigError, unknown
from gradwise.lora._state import lora_layers, require_state, saved_modules


def _is_bias(name: str) -> bool:
    return name == "bias" or name.endswith(".bias")


def set_adapter(model: nn.Module, adapter_name: str) -> nn.Module:
    """Make ``adapter_name`` the adapter the model runs and trains.

    The active adapter's factors (and ``modules_to_save`` copies) train; the
    other adapters' are frozen. Biases follow the active adapter's
    ``bias`` setting. If an adapter is merged, it is unmerged and the new
    one merged in its place, so a merged model stays merged.

    >>> from gradwise.lora import LoRAConfig, inject
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
