"""Where a model's LoRA adapters are recorded, and the walks over its LoRA modules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from torch import nn

from gradwise.errors import ConfigError
from gradwise.lora._config import LoRAConfig
from gradwise.lora._layers import LoRALayer
from gradwise.lora._modules_to_save import ModulesToSave

_STATE_ATTR = "_gradwise_lora"


@dataclass
class _State:
    configs: dict[str, LoRAConfig] = field(default_factory=dict)
    active: str | None = None


def get_state(model: nn.Module) -> _State | None:
    return model.__dict__.get(_STATE_ATTR)


def require_state(model: nn.Module) -> _State:
    state = get_state(model)
    if state is None or not state.configs:
        raise ConfigError("the model has no LoRA adapters; add one with gradwise.lora.inject first")
    return state


def lora_layers(model: nn.Module) -> Iterator[tuple[str, LoRALayer]]:
    """``(path, wrapper)`` for every LoRA wrapper in the model."""
    for path, module in model.named_modules():
        if isinstance(module, LoRALayer):
            yield path, module


def saved_modules(model: nn.Module) -> Iterator[tuple[str, ModulesToSave]]:
    for path, module in model.named_modules():
        if isinstance(module, ModulesToSave):
            yield path, module
