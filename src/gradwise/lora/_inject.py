"""`inject`: find the target modules and wrap them, through a list of dispatch functions.

Each dispatch function takes a module and returns a LoRA wrapper for it, or
None; the first that returns a wrapper wins, so a more specific layer type is
listed before a more general one. The model keeps its adapters' configs in a
small `_State` on the root module.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Iterator

from torch import nn

from gradwise.errors import ConfigError
from gradwise.lora._config import ALL_LINEAR, LoRAConfig, suggest_module
from gradwise.lora._conv import LoRAConv
from gradwise.lora._layers import LoRAEmbedding, LoRALayer, LoRALinear
from gradwise.lora._modules_to_save import ModulesToSave
from gradwise.lora._state import (  # noqa: F401  (re-exported for the io module)
    _STATE_ATTR,
    _State,
    get_state,
    lora_layers,
    require_state,
    saved_modules,
)
from gradwise.lora._switch import set_adapter  # the switch also sets trainable flags

SUPPORTED = "nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d, transformers Conv1D"


# -- dispatch ----------------------------------------------------------------------------


def _hf_conv1d() -> type | None:
    # Lazy and optional: a model holding a Conv1D has imported transformers already,
    # so looking in sys.modules finds it without importing transformers ourselves.
    module = sys.modules.get("transformers.pytorch_utils")
    return getattr(module, "Conv1D", None)


def dispatch_embedding(module: nn.Module) -> LoRALayer | None:
    return LoRAEmbedding(module) if isinstance(module, nn.Embedding) else None


def dispatch_conv(module: nn.Module) -> LoRALayer | None:
    return LoRAConv(module) if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) else None


def dispatch_linear(module: nn.Module) -> LoRALayer | None:
    return LoRALinear(module) if isinstance(module, nn.Linear) else None


def dispatch_hf_conv1d(module: nn.Module) -> LoRALayer | None:
    conv1d = _hf_conv1d()
    if conv1d is not None and isinstance(module, conv1d):
        return LoRALinear(module, fan_in_fan_out=True)
    return None


DISPATCHERS: list[Callable[[nn.Module], LoRALayer | None]] = [
    dispatch_embedding,
    dispatch_conv,
    dispatch_linear,
    dispatch_hf_conv1d,
]


def _dispatch(module: nn.Module) -> LoRALayer | None:
    for dispatcher in DISPATCHERS:
        wrapper = dispatcher(module)
        if wrapper is not None:
            return wrapper
    return None


# -- target matching (PEFT's rules, so PEFT rebuilds the same set from our config) -------


def _walk(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Named submodules, not descending into LoRA or modules-to-save wrappers."""
    for name, child in module.named_children():
        path = f"{prefix}.{name}" if prefix else name
        yield path, child
        if not isinstance(child, (LoRALayer, ModulesToSave)):
            yield from _walk(child, path)


def _name_matches(spec: str | tuple[str, ...], path: str) -> bool:
    if isinstance(spec, str):
        return re.fullmatch(spec, path) is not None
    return any(path == t or path.endswith("." + t) for t in spec)


def _is_linear(module: nn.Module) -> bool:
    if isinstance(module, LoRALinear):
        return True
    conv1d = _hf_conv1d()
    return isinstance(module, nn.Linear) or (conv1d is not None and isinstance(module, conv1d))


def _output_embedding(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_output_embeddings", None)
    try:
        return get() if callable(get) else None
    except (AttributeError, NotImplementedError):
        return None


def find_targets(model: nn.Module, config: LoRAConfig) -> list[tuple[str, nn.Module]]:
    """``(path, module)`` of every module ``config`` targets, in model order.

    Rules (PEFT's): ``exclude_modules`` and ``modules_to_save`` are never
    targets; a list matches a path equal to a name or ending in ``.name``; a
    string is a regex matched against the full path; ``"all-linear"`` takes every
    linear layer but a Hugging Face model's output embedding (the LM head).
    """
    spec = config.target_modules
    all_linear = isinstance(spec, str) and spec.lower() == ALL_LINEAR
    head = _output_embedding(model) if all_linear else None
    saved = config.modules_to_save or ()
    found = []
    for path, module in _walk(model):
        if isinstance(module, ModulesToSave):
            continue
        if config.exclude_modules is not None and _name_matches(config.exclude_modules, path):
            continue
        if any(re.match(rf"(^|.*\.){re.escape(m)}($|\..*)", path) for m in saved):
            continue
        if all_linear:
            hit = _is_linear(module) and module is not head
            if isinstance(module, LoRALayer) and module.base_layer is head:
                hit = False
        else:
            hit = _name_matches(spec, path)
        if hit:
            found.append((path, module))
    return found


def _set_submodule(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, new)


def _check_adapter_name(name: str) -> None:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", name):
        raise ConfigError(
            f"adapter_name must be a non-empty identifier without dots, got {name!r}"
        )


# -- inject ------------------------------------------------------------------------------


def inject(model: nn.Module, config: LoRAConfig, adapter_name: str = "default") -> nn.Module:
    """Wrap the modules ``config`` targets with LoRA adapter ``adapter_name``, in place.

    Every base parameter is frozen; only the adapter's factors (and its
    ``modules_to_save`` copies and biases per ``config.bias``) train. A model
    can hold several adapters: injecting another name adds it beside the
    others (layers already wrapped get a second pair of factors) and makes it
    the active one; `set_adapter` switches back.

    Args:
        model: any ``nn.Module``; the targets are its submodules.
        config: a `LoRAConfig`.
        adapter_name: name of the new adapter (an identifier, no dots).

    Returns:
        ``model`` itself.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> _ = inject(net, LoRAConfig(r=2, target_modules=["0"]))
        >>> type(net[0]).__name__, net[0].lora_A["default"].weight.shape
        ('LoRALinear', torch.Size([2, 4]))
    """
    return _inject(model, config, adapter_name)


def _inject(
    model: nn.Module, config: LoRAConfig, adapter_name: str, *, strict_modules_to_save: bool = True
) -> nn.Module:
    # strict_modules_to_save=False: PEFT files of task SEQ_CLS list both "classifier"
    # and "score"; a model has one of them.
    if not isinstance(config, LoRAConfig):
        raise ConfigError(f"config must be a LoRAConfig, got {type(config).__name__}")
    _check_adapter_name(adapter_name)
    state = get_state(model)
    if state is not None and adapter_name in state.configs:
        raise ConfigError(
            f"adapter {adapter_name!r} already exists; pass another adapter_name "
            f"(present: {', '.join(state.configs)})"
        )
    if any(layer.merged_adapter for _, layer in lora_layers(model)):
        raise ConfigError("an adapter is merged into the weights; call unmerge(model) before inject")

    targets = find_targets(model, config)
    if not targets:
        names = [p for p, _ in _walk(model)]
        spec = config.target_modules
        hint = suggest_module(spec[0], names) if isinstance(spec, tuple) else ""
        raise ConfigError(
            f"target_modules {spec!r} matched no module of the model{hint}; "
            f"LoRA wraps {SUPPORTED}"
        )
    plans = []
    for path, module in targets:
        wrapper = module if isinstance(module, LoRALayer) else _dispatch(module)
        if wrapper is None:
            raise ConfigError(
                f"target_modules {config.target_modules!r} matched {path!r} of type "
                f"{type(module).__name__}, which LoRA cannot wrap; supported: {SUPPORTED}"
            )
        groups = getattr(wrapper.base_layer, "groups", 1) if isinstance(wrapper, LoRAConv) else 1
        r = config.rank(path)
        if r % groups:
            raise ConfigError(
                f"r={r} for {path!r}: a convolution with groups={groups} needs a rank that is a "
                "multiple of groups (each group gets rank r/groups); set rank_pattern for it"
            )
        plans.append((path, module, wrapper, r))

    saved_paths = _modules_to_save_targets(model, config, strict_modules_to_save)

    if state is None:
        state = _State()
        model.__dict__[_STATE_ATTR] = state
    for path, module, wrapper, r in plans:
        if wrapper is not module:
            _set_submodule(model, path, wrapper)
        wrapper.add_adapter(
            adapter_name,
            r,
            config.lora_alpha(path),
            dropout=config.dropout,
            use_rslora=config.use_rslora,
            init=config.init,
        )
        n_adapter, n_layer = wrapper.adapter_numel(adapter_name), wrapper.base_layer.weight.numel()
        if n_adapter > n_layer:
            warnings.warn(
                f"LoRA adapter {adapter_name!r} on {path!r} has {n_adapter:,} parameters, more than "
                f"the {n_layer:,} of the layer it adapts (r={r}); a smaller r, or full fine-tuning "
                "of this layer, would be cheaper",
                UserWarning,
                stacklevel=3,
            )
    for path in saved_paths:
        module = model.get_submodule(path)
        if not isinstance(module, ModulesToSave):
            module = ModulesToSave(module)
            _set_submodule(model, path, module)
        module.add_adapter(adapter_name)
    state.configs[adapter_name] = config

    adapter_params = {
        id(p) for _, m in [*lora_layers(model), *saved_modules(model)] for n in m.adapters
        for p in m.adapter_parameters(n)
    }
    for p in model.parameters():
        if id(p) not in adapter_params:
            p.requires_grad_(False)
    set_adapter(model, adapter_name)
    return model


def _modules_to_save_targets(model: nn.Module, config: LoRAConfig, strict: bool) -> list[str]:
    names = config.modules_to_save or ()
    paths = []
    for name in names:
        # PEFT's rule is a plain suffix test on the path.
        hits = [p for p, m in _walk(model) if p.endswith(name) and not isinstance(m, LoRALayer)]
        if not hits and strict:
            all_paths = [p for p, _ in _walk(model)]
            raise ConfigError(
                f"modules_to_save: no module named {name!r}{suggest_module(name, all_paths)}"
            )
        paths.extend(h for h in hits if h not in paths)
    return paths
