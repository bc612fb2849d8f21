"""``gradwise export``: one safetensors file (and a PEFT adapter) from a checkpoint.

A single-file checkpoint (``step-*.pt``) holds the full weights; they are
written as they are. An FSDP checkpoint is a directory of DCP shards. :func:`export_checkpoint`
reads every shard in this process (no process group, any number of writers)
and writes the full weights to ``model.safetensors``, keyed as in
``model.state_dict()``. When the trained model carried LoRA adapters, the
checkpoint also holds their PEFT layout (recorded by :func:`gradwise.train._layout.adapter_layout`
when it was saved), and ``adapter/`` gets ``adapter_model.safetensors`` +
``adapter_config.json`` exactly as :func:`gradwise.lora.save_adapter` writes
them for the same weights, ready for ``PeftModel.from_pretrained``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gradwise.errors import CheckpointError

MODEL_FILE = "model.safetensors"
ADAPTER_DIR = "adapter"


def export_checkpoint(path: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Write ``out/model.safetensors`` (and ``out/adapter/`` for LoRA) from a checkpoint.

    Args:
        path: a checkpoint (a ``.pt`` file or a sharded directory), or a run
            directory / checkpoint directory whose latest checkpoint is exported.
        out: the output directory (created).

    Returns:
        the files written.

    Example:
        >>> # export_checkpoint("runs/lm/checkpoints", "runs/lm/export")
    """
    from safetensors.torch import save as safetensors_bytes

    from gradwise.train._checkpoint import load_checkpoint, resolve_checkpoint
    from gradwise.train._dcp import consolidate, is_sharded_checkpoint
    from gradwise.train._io import atomic_write

    path = Path(path)
    if not is_sharded_checkpoint(path) and (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    path = resolve_checkpoint(path)
    meta = load_checkpoint(path)
    if is_sharded_checkpoint(path):
        weights = consolidate(path)
    elif isinstance(meta.get("model"), dict):  # a single-file checkpoint holds the full weights
        weights = meta["model"]
    else:
        raise CheckpointError(f"checkpoint {str(path)!r} holds no model weights")
    full = {k: v.detach().contiguous() for k, v in weights.items()}
    out = Path(out)
    written = [
        atomic_write(out / MODEL_FILE, lambda f: f.write(safetensors_bytes(full, {"format": "pt"})))
    ]
    layout = meta.get("lora")
    if layout is not None:
        missing = [k for k in layout["keys"].values() if k not in full]
        if missing:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks adapter tensors {missing[:3]}")
        tensors = {peft: full[key].clone() for peft, key in layout["keys"].items()}
        text = json.dumps(layout["config"], indent=2, sort_keys=True) + "\n"
        written.append(
            atomic_write(
                out / ADAPTER_DIR / "adapter_model.safetensors",
                lambda f: f.write(safetensors_bytes(tensors, {"format": "pt"})),
            )
        )
        written.append(
            atomic_write(
                out / ADAPTER_DIR / "adapter_config.json", lambda f: f.write(text.encode())
            )
        )
    return written
