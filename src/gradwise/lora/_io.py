"""Adapter files in PEFT's format: ``adapter_config.json`` + ``adapter_model.safetensors``.

Keys are PEFT's: ``base_model.model.<module path>.lora_A.weight`` /
``lora_B.weight`` (``lora_embedding_A`` / ``lora_embedding_B`` for embeddings),
with the adapter name left out, so PEFT's ``PeftModel.from_pretrained`` loads
what `save_adapter` writes and `load_adapter` loads what PEFT's
``save_pretrained`` writes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from gradwise._io import atomic_write
from gradwise.errors import CheckpointError, ConfigError, closest
from gradwise.lora._config import ALL_LINEAR, LoRAConfig
from gradwise.lora._inject import (
    _inject,
    get_state,
    inject,  # noqa: F401  (used by the doctests)
    lora_layers,
    require_state,
)
from gradwise.lora._layers import LoRALinear
from gradwise.lora._model import delete_adapter, set_adapter

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
LEGACY_WEIGHTS_NAME = "adapter_model.bin"
PREFIX = "base_model.model."

# PEFT config keys that change what an adapter computes and that gradwise does not
# implement: loading such a file would silently give other outputs, so it is refused.
_UNSUPPORTED = (
    "use_dora",
    "lora_bias",
    "layers_to_transform",
    "layer_replication",
    "target_parameters",
    "trainable_token_indices",
    "use_qalora",
    "alora_invocation_tokens",
    "use_bdlora",
    "arrow_config",
    "velora_config",
    "monteclora_config",
)


# -- keys --------------------------------------------------------------------------------


def _strip_adapter_name(key: str, name: str) -> str:
    """PEFT's key rule: drop ``.<name>`` from a model key (``q.lora_A.default.weight`` → ``q.lora_A.weight``)."""
    if key.endswith(f".{name}"):
        return key[: -len(name) - 1]
    head, _, last = key.rpartition(".")
    return re.sub(re.escape(f".{name}") + "$", "", head) + "." + last if head else key


Entry = tuple[Callable[[], torch.Tensor], Callable[[torch.Tensor, str], None]]


def _plain_entry(tensor: torch.Tensor) -> Entry:
    def put(src: torch.Tensor, key: str) -> None:
        if tuple(src.shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{key}: shape {tuple(src.shape)} in the file but {tuple(tensor.shape)} in the model"
            )
        with torch.no_grad():
            tensor.copy_(src)

    return (lambda: tensor), put


def _entries(model: nn.Module, name: str, config: LoRAConfig) -> tuple[dict[str, Entry], list]:
    """File key → (read, write) for adapter ``name``, plus the LoRA layers grouped per module."""
    entries: dict[str, Entry] = {}
    layers = []
    for path, layer in lora_layers(model):
        if name in layer.adapters:
            prefix = f"{PREFIX}{path}."
            layers.append((prefix, layer))
            for suffix in layer.file_tensors(name):
                entries[prefix + suffix] = None  # filled per layer, see load_adapter
    state = model.state_dict(keep_vars=True)
    others = [n for n in require_state(model).configs if n != name]

    def own(key: str) -> bool:
        return not any(f".{o}." in key or key.endswith(f".{o}") for o in others)

    if config.bias == "all":
        for key, t in state.items():
            if (key == "bias" or key.endswith(".bias")) and own(key) and ".lora_" not in key:
                entries[PREFIX + _strip_adapter_name(key, name)] = _plain_entry(t)
    elif config.bias == "lora_only":
        for path, _ in lora_layers(model):
            key = f"{path}.base_layer.bias"
            if key in state:
                entries[PREFIX + key] = _plain_entry(state[key])
    marker = f".modules_to_save.{name}."
    for key, t in state.items():
        if marker in key:
            path, _, rest = key.partition(marker)
            entries[f"{PREFIX}{path}.{rest}"] = _plain_entry(t)
    return entries, layers


# -- config ------------------------------------------------------------------------------


def _peft_config(model: nn.Module, name: str, config: LoRAConfig, base: str | None) -> dict:
    target: Any = config.target_modules
    if isinstance(target, str) and target.lower() == ALL_LINEAR:
        # PEFT writes the resolved names; the literal would re-resolve differently for
        # a model that is not a Hugging Face PreTrainedModel.
        target = sorted(p for p, layer in lora_layers(model) if name in layer.adapters)
    elif isinstance(target, tuple):
        target = list(target)
    fan_in_fan_out = any(
        isinstance(layer, LoRALinear) and layer.fan_in_fan_out and name in layer.adapters
        for _, layer in lora_layers(model)
    )

    def num(x: float) -> float | int:
        return int(x) if float(x).is_integer() else x

    return {
        "peft_type": "LORA",
        "task_type": config.task_type,
        "base_model_name_or_path": base,
        "revision": None,
        "inference_mode": True,
        "r": config.r,
        "lora_alpha": num(config.alpha),
        "lora_dropout": config.dropout,
        "target_modules": target,
        "exclude_modules": list(config.exclude_modules)
        if isinstance(config.exclude_modules, tuple) else config.exclude_modules,
        "use_rslora": config.use_rslora,
        "rank_pattern": dict(config.rank_pattern),
        "alpha_pattern": {k: num(v) for k, v in config.alpha_pattern.items()},
        "modules_to_save": list(config.modules_to_save) if config.modules_to_save else None,
        "bias": config.bias,
        "fan_in_fan_out": fan_in_fan_out,
        "init_lora_weights": "gaussian" if config.init == "gaussian" else True,
        "use_dora": False,
        "lora_bias": False,
        "layers_to_transform": None,
        "layers_pattern": None,
    }


def config_from_peft(raw: Any, source: str = CONFIG_NAME) -> LoRAConfig:
    """Read a PEFT ``adapter_config.json`` mapping into a `LoRAConfig`."""
    if not isinstance(raw, dict):
        raise CheckpointError(f"{source}: expected a JSON object, got {type(raw).__name__}")
    if raw.get("peft_type") != "LORA":
        raise CheckpointError(
            f"{source}: peft_type is {raw.get('peft_type')!r}; gradwise loads LoRA adapters "
            "(peft_type 'LORA')"
        )
    for key in _UNSUPPORTED:
        if raw.get(key):
            raise CheckpointError(f"{source}: {key}={raw[key]!r} is not supported by gradwise.lora")
    init = raw.get("init_lora_weights", True)
    if not (isinstance(init, bool) or init == "gaussian"):
        # PiSSA, OLoRA, LoftQ, ... change the base weights at init, which the file does not carry.
        raise CheckpointError(f"{source}: init_lora_weights={init!r} is not supported by gradwise.lora")
    if "r" not in raw:
        raise CheckpointError(f"{source}: the field 'r' is missing")
    target = raw.get("target_modules")
    try:
        return LoRAConfig(
            r=raw["r"],
            alpha=raw.get("lora_alpha", 8),
            dropout=raw.get("lora_dropout", 0.0) or 0.0,
            target_modules=tuple(target) if isinstance(target, list) else target,
            use_rslora=bool(raw.get("use_rslora", False)),
            bias=raw.get("bias", "none"),
            modules_to_save=raw.get("modules_to_save"),
            init="gaussian" if init == "gaussian" else "kaiming",
            rank_pattern=raw.get("rank_pattern") or {},
            alpha_pattern=raw.get("alpha_pattern") or {},
            exclude_modules=raw.get("exclude_modules"),
            task_type=raw.get("task_type"),
        )
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


# -- files -------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    # a reader sees the old file or the new one, never half
    atomic_write(path, lambda f: f.write(data))


def save_adapter(
    model: nn.Module,
    directory: str | os.PathLike,
    adapter_name: str | None = None,
    *,
    base_model_name_or_path: str | None = None,
) -> Path:
    """Write adapter ``adapter_name`` (default: the active one) in PEFT's format.

    Writes ``adapter_model.safetensors`` then ``adapter_config.json``, each
    through a temp file and an atomic rename. ``PeftModel.from_pretrained(base,
    directory)`` loads the result. A grouped convolution's A is written in
    PEFT's dense layout (zeros outside its group blocks).

    Returns:
        The directory as a ``Path``.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 4))
        >>> _ = inject(net, LoRAConfig(r=2, target_modules=["0"]))
        >>> import tempfile; d = save_adapter(net, tempfile.mkdtemp())
        >>> sorted(p.name for p in d.iterdir())
        ['adapter_config.json', 'adapter_model.safetensors']
    """
    state = require_state(model)
    name = adapter_name if adapter_name is not None else state.active
    if name not in state.configs:
        raise ConfigError(f"no adapter named {name!r}; present: {', '.join(state.configs)}")
    config = state.configs[name]
    if base_model_name_or_path is None:
        base_model_name_or_path = getattr(getattr(model, "config", None), "name_or_path", None) or None
    entries, layers = _entries(model, name, config)
    tensors = {}
    for prefix, layer in layers:
        for suffix, t in layer.file_tensors(name).items():
            tensors[prefix + suffix] = t
    for key, entry in entries.items():
        if entry is not None:
            tensors[key] = entry[0]()
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    peft_cfg = _peft_config(model, name, config, base_model_name_or_path)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(directory / WEIGHTS_NAME, safetensors_bytes(tensors, metadata={"format": "pt"}))
    _write_atomic(directory / CONFIG_NAME, (json.dumps(peft_cfg, indent=2, sort_keys=True) + "\n").encode())
    return directory


def _read(directory: Path) -> tuple[dict, dict[str, torch.Tensor], str]:
    if not directory.is_dir():
        raise CheckpointError(f"adapter directory {str(directory)!r} does not exist")
    cfg_path = directory / CONFIG_NAME
    if not cfg_path.is_file():
        raise CheckpointError(f"{CONFIG_NAME} is missing from {str(directory)!r}")
    try:
        raw = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{CONFIG_NAME}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    weights = directory / WEIGHTS_NAME
    if weights.is_file():
        try:
            tensors = load_file(str(weights), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{WEIGHTS_NAME}: unreadable ({exc})") from None
        return raw, tensors, WEIGHTS_NAME
    legacy = directory / LEGACY_WEIGHTS_NAME
    if legacy.is_file():
        return raw, torch.load(legacy, map_location="cpu", weights_only=True), LEGACY_WEIGHTS_NAME
    raise CheckpointError(f"{WEIGHTS_NAME} is missing from {str(directory)!r}")


def _unexpected(key: str, source: str, model: nn.Module, name: str) -> CheckpointError:
    if not key.startswith(PREFIX):
        return CheckpointError(f"{source}: key {key!r} does not start with {PREFIX!r}; not a PEFT adapter file")
    module = re.sub(r"\.(lora_[AB]\.weight|lora_embedding_[AB]|lora_[AB]\.bias|[^.]+)$", "", key[len(PREFIX):])
    paths = [p for p, layer in lora_layers(model) if name in layer.adapters]
    return CheckpointError(
        f"{source}: unexpected key {key!r}: the model has no LoRA module {module!r} for adapter "
        f"{name!r}{closest(module, paths)}"
    )


def load_adapter(
    model: nn.Module, directory: str | os.PathLike, adapter_name: str = "default"
) -> nn.Module:
    """Load a PEFT-format adapter directory into ``model`` as ``adapter_name`` and activate it.

    If the model has no adapter of that name, one is injected from the
    directory's ``adapter_config.json`` first; otherwise the existing adapter's
    rank and scale must match the file's. Every key must match: a missing
    file, an unknown module, a wrong rank or shape raises a `CheckpointError`
    naming the key, and the model is left as it was.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 4))
        >>> _ = inject(net, LoRAConfig(r=2, target_modules=["0"]))
        >>> import tempfile; d = save_adapter(net, tempfile.mkdtemp())
        >>> net2 = load_adapter(nn.Sequential(nn.Linear(4, 4)), d)
        >>> net2[0].r
        {'default': 2}
    """
    directory = Path(directory)
    raw, tensors, source = _read(directory)
    config = config_from_peft(raw)
    state = get_state(model)
    previous = state.active if state is not None else None
    injected = state is None or adapter_name not in state.configs
    if injected:
        try:
            _inject(model, config, adapter_name, strict_modules_to_save=False)
        except ConfigError as exc:
            raise CheckpointError(f"{CONFIG_NAME}: {exc}") from None
    else:
        have = state.configs[adapter_name]
        for field_name in ("r", "alpha", "use_rslora", "rank_pattern", "alpha_pattern"):
            ours, theirs = getattr(have, field_name), getattr(config, field_name)
            if ours != theirs:
                raise CheckpointError(
                    f"{CONFIG_NAME}: {field_name} is {theirs!r} in the file but {ours!r} in the "
                    f"model's adapter {adapter_name!r}"
                )
    try:
        _load_tensors(model, adapter_name, tensors, source)
    except CheckpointError:
        if injected:
            delete_adapter(model, adapter_name)
            if previous is not None:
                set_adapter(model, previous)
        raise
    set_adapter(model, adapter_name)
    return model


def _load_tensors(model: nn.Module, name: str, tensors: dict[str, torch.Tensor], source: str) -> None:
    config = require_state(model).configs[name]
    entries, layers = _entries(model, name, config)
    for key in tensors:
        if key not in entries:
            raise _unexpected(key, source, model, name)
    for key in entries:
        if key not in tensors:
            raise CheckpointError(f"{source}: key {key!r} is missing")
    # Snapshot first, so that a bad key or shape anywhere leaves the adapter as it was.
    snapshot = [(layer, {k: v.detach().clone() for k, v in layer.file_tensors(name).items()})
                for _, layer in layers]
    plain = {k: e[0]().detach().clone() for k, e in entries.items() if e is not None}
    try:
        for prefix, layer in layers:
            own = {s: tensors[prefix + s] for s in layer.file_tensors(name)}
            layer.load_file_tensors(name, own, prefix)
        for key, entry in entries.items():
            if entry is not None:
                entry[1](tensors[key], key)
    except CheckpointError:
        for layer, saved in snapshot:
            layer.load_file_tensors(name, saved, "")
        for key, value in plain.items():
            entries[key][1](value, key)
        raise
