"""Load the pretrained model a fine-tune starts from.

Accepted sources:

* a local Hugging Face model directory (``config.json``): the encoder and its tokenizer;
* a ``gradwise train`` run directory (``config.yaml`` + ``checkpoints/``): the
  MLP it trained, rebuilt from the run's config;
* a gradwise training checkpoint (``.pt``), a directory of them, a plain
  state dict (``.pt``) or a ``.safetensors`` weights file, with a model spec
  (``{"kind": "mlp" | "cnn", ...}``) saying which network the weights fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from gradwise.errors import CheckpointError, ConfigError, unknown
from gradwise.finetune._convnet import ConvNet
from gradwise.finetune._text import load_hf_encoder
from gradwise.nn import MLP

MODEL_KINDS = ("mlp", "cnn")
_MLP_KEYS = {"hidden", "activation", "activation_kw", "dropout", "batchnorm"}
_CNN_KEYS = {"in_shape", "channels", "hidden", "batchnorm", "dropout"}


@dataclass
class Source:
    """A loaded pretrained model: ``kind`` is ``"gradwise"`` or ``"hf"`` (then ``tokenizer`` is set)."""

    model: nn.Module
    kind: str
    path: Path
    tokenizer: Any = None
    weights: str = ""


def _shape(state: Mapping[str, torch.Tensor], key: str, where: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"{where}: no tensor {key!r} in the weights; is the model spec right?")
    return tuple(state[key].shape)


def build_model(spec: Mapping[str, Any], state: Mapping[str, torch.Tensor], where: str) -> nn.Module:
    """The network ``spec`` describes, sized from the weights in ``state`` and loaded with them.

    ``spec["kind"]`` is ``"mlp"`` (keys of :class:`gradwise.nn.MLP`: ``hidden``,
    ``activation``, ``activation_kw``, ``dropout``, ``batchnorm``) or ``"cnn"``
    (keys of :class:`ConvNet`: ``in_shape``, ``channels``, ``hidden``,
    ``batchnorm``, ``dropout``); input and output sizes come from ``state``.
    """
    spec = dict(spec)
    kind = spec.pop("kind", "mlp")
    if kind not in MODEL_KINDS:
        raise unknown("model kind", str(kind), MODEL_KINDS)
    allowed = _MLP_KEYS if kind == "mlp" else _CNN_KEYS
    for key in spec:
        if key not in allowed:
            raise unknown(f"{kind} model field", key, sorted(allowed))
    out = _shape(state, "head.weight", where)[0]
    if kind == "mlp":
        hidden = list(spec.get("hidden", []))
        first = "block0.linear.weight" if hidden else "head.weight"
        model: nn.Module = MLP(
            _shape(state, first, where)[1],
            hidden,
            out,
            activation=spec.get("activation", "relu"),
            dropout=spec.get("dropout", 0.0),
            batchnorm=spec.get("batchnorm", False),
            **spec.get("activation_kw", {}),
        )
    else:
        if "in_shape" not in spec:
            raise ConfigError(f"{where}: a cnn model spec needs in_shape, e.g. [1, 8, 8]")
        model = ConvNet(
            tuple(spec["in_shape"]),
            tuple(spec.get("channels", (16, 32))),
            spec.get("hidden", 64),
            out,
            batchnorm=spec.get("batchnorm", True),
            dropout=spec.get("dropout", 0.0),
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{where}: the weights do not fit the model spec {dict(spec, kind=kind)}: {exc}") from None
    return model


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Model weights from a gradwise checkpoint, a plain state dict or a safetensors file."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{str(path)!r} is not a readable torch file: {exc}") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict) and "format" in obj:
        return obj["model"]  # a gradwise training checkpoint
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    raise CheckpointError(f"{str(path)!r} holds neither a gradwise checkpoint nor a state dict")


def _checkpoint_file(directory: Path, which: str) -> Path:
    from gradwise.train._checkpoint import resolve_checkpoint

    if which == "best":
        best = directory / "best.pt"
        if not best.is_file():
            raise CheckpointError(f"no best.pt in {str(directory)!r} (train with save_best)")
        return best
    return resolve_checkpoint(directory)


def load_source(
    path: str | Path, model: Mapping[str, Any] | None = None, checkpoint: str = "latest"
) -> Source:
    """Load a pretrained model from ``path`` (see the module docstring for what it may be).

    Args:
        path: a Hugging Face model directory, a gradwise run directory, a
            checkpoint directory or file, or a weights file.
        model: the model spec for bare weights (``{"kind": "cnn", "in_shape": [1, 8, 8]}``);
            a run directory's own config is used when omitted.
        checkpoint: ``"latest"`` or ``"best"`` checkpoint of a run/checkpoint directory.
    """
    path = Path(path)
    if checkpoint not in ("latest", "best"):
        raise unknown("checkpoint", str(checkpoint), ("latest", "best"))
    if not path.exists():
        raise ConfigError(f"source.path {str(path)!r} does not exist")
    if path.is_dir() and (path / "config.json").is_file():
        encoder, tokenizer = load_hf_encoder(path)
        return Source(encoder, "hf", path, tokenizer, weights=str(path))
    spec = dict(model) if model is not None else None
    if path.is_dir() and (path / "config.yaml").is_file() and (path / "checkpoints").is_dir():
        if spec is None:
            run_cfg = yaml.safe_load((path / "config.yaml").read_text()) or {}
            spec = {"kind": "mlp", **(run_cfg.get("model") or {})}
            spec = {k: v for k, v in spec.items() if k in _MLP_KEYS | {"kind"}}
        file = _checkpoint_file(path / "checkpoints", checkpoint)
    elif path.is_dir():
        file = _checkpoint_file(path, checkpoint)
    else:
        file = path
    if spec is None:
        raise ConfigError(
            f"source {str(path)!r} holds bare weights; give source.model, e.g. "
            "{kind: mlp, hidden: [128, 64]} or {kind: cnn, in_shape: [1, 8, 8]}"
        )
    state = read_weights(file)
    return Source(build_model(spec, state, str(file)), "gradwise", path, weights=str(file))
