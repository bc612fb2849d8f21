"""Sharded checkpoints of FSDP runs with ``torch.distributed.checkpoint`` (DCP).

Under FSDP no rank holds the whole model, so a checkpoint is a directory
(``step-00000100/``) that every rank writes its shards into, in DCP's format
(``*.distcp`` files and a ``.metadata`` index), beside ``meta.pt``: the rest
of the training snapshot (position, every rank's RNG states, history,
callbacks, scheduler), written by rank 0 with ``torch.save`` and read with
``weights_only=True``.

The model and optimizer state go through
``torch.distributed.checkpoint.state_dict.get_state_dict`` /
``set_state_dict``, which name optimizer state by parameter name, so DCP can
load a checkpoint into any sharding: another number of processes, or one
process with a plain model.

A write is atomic: the ranks write into ``.NAME.tmp/``; after a barrier
rank 0 adds ``meta.pt`` and renames the directory to ``NAME``. A process
killed during a write leaves the hidden temporary directory, which
``resolve_checkpoint`` never picks, and the previous checkpoint intact.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

META = "meta.pt"
"""The file in a sharded checkpoint directory that holds everything but the shards."""


def is_sharded_checkpoint(path: str | os.PathLike) -> bool:
    """True for a directory written by :func:`save_sharded` (it has ``meta.pt``)."""
    path = Path(path)
    return path.is_dir() and (path / META).is_file()


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _states(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_state_dict

    msd, osd = get_state_dict(model, optimizer)
    return {"model": msd, "optimizer": osd}


def save_sharded(
    path: str | os.PathLike,
    payload: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    writes: bool,
) -> Path:
    """Write a sharded checkpoint directory ``path`` (a collective call on every rank).

    Args:
        path: the final directory.
        payload: the training snapshot; its ``model`` and ``optimizer``
            entries are replaced by the DCP shards.
        model, optimizer: the sharded model and its optimizer.
        writes: True on the one rank that writes ``meta.pt`` and renames.
    """
    import torch.distributed.checkpoint as dcp

    from gradwise.train._io import atomic_write

    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp"
    if writes:
        shutil.rmtree(tmp, ignore_errors=True)  # left by a process killed mid-write
        tmp.mkdir(parents=True)
    _barrier()
    dcp.save(_states(model, optimizer), checkpoint_id=str(tmp))
    _barrier()
    if writes:
        from gradwise.train._layout import adapter_layout

        meta = {**payload, "model": None, "optimizer": None, "sharded": True}
        meta["lora"] = adapter_layout(model)  # names only: what `gradwise export` writes
        atomic_write(tmp / META, lambda f: torch.save(meta, f))
        old = path.parent / f".{path.name}.old"
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return path


def load_sharded(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load a sharded checkpoint's model and optimizer state in place; returns their state dicts.

    ``model`` may be sharded over any number of processes, or be a plain
    module in a process without ``torch.distributed``: DCP reshards as it
    reads. The returned ``(model.state_dict(), optimizer.state_dict())`` are
    the loaded states in the objects' own format.
    """
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_state_dict

    state = _states(model, optimizer)
    alone = not (dist.is_available() and dist.is_initialized())
    dcp.load(state, checkpoint_id=str(path), no_dist=alone)
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
    )
    return model.state_dict(), optimizer.state_dict()


def consolidate(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The full model weights of a sharded checkpoint, read in this process (no process group).

    DCP's ``dcp_to_torch_save`` reads every shard into one unsharded state
    dict; the model's entries are returned, keyed as in ``model.state_dict()``.
    """
    import tempfile

    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # DCP warns that no process group exists: reading alone is the intent here.
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        out = Path(tmp) / "full.pt"
        dcp_to_torch_save(str(path), str(out))
        full = torch.load(out, map_location="cpu", weights_only=True)
    return {k: v for k, v in full["model"].items() if isinstance(v, torch.Tensor)}
