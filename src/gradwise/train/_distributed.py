"""Multi-process training (DDP or FSDP) under ``torchrun``: process group, sharding and reductions.

``torchrun --nproc_per_node=N script.py`` starts N processes and gives each
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``.
``Trainer.fit`` sees them, joins the processes into one process group (gloo
on CPU, NCCL on CUDA), wraps the model in ``DistributedDataParallel`` and
gives every process its shard of each epoch. Everything here is used only in
that case: a single process never enters this module's code paths.

Sharding follows ``torch.utils.data.DistributedSampler``: the shared epoch
permutation ``perm`` (drawn from a generator seeded alike on every rank) is
padded by wrapping around to a multiple of ``W`` processes, and rank ``r``
takes ``perm[r::W]``. With per-process batch ``B``, batch ``i`` of the ranks
together holds exactly ``perm[i·B·W : (i+1)·B·W]``, the batch ``i`` of one
process with batch ``B·W``.
"""

from __future__ import annotations

import atexit
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler, IterableDataset

from gradwise.errors import CheckpointError, ConfigError
from gradwise.train._fsdp import FSDP, as_fsdp, shard
from gradwise.train._shard import Shard, ShardSampler
from gradwise.train.metrics import R2, Metric


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def launched() -> bool:
    """True when ``torchrun`` (or a launcher setting its variables) started several processes."""
    return "RANK" in os.environ and _env_int("WORLD_SIZE", 1) > 1


def process_rank() -> int:
    """This process's rank (0 to ``world_size() - 1``); 0 without torch.distributed.

    Reads the process group when one exists, else ``torchrun``'s ``RANK``
    variable, so it answers before the Trainer has set the group up.

    Example:
        >>> process_rank()
        0
    """
    if _initialized():
        return _dist().get_rank()
    return _env_int("RANK", 0)


def world_size() -> int:
    """The number of training processes; 1 without torch.distributed.

    Example:
        >>> world_size()
        1
    """
    if _initialized():
        return _dist().get_world_size()
    return _env_int("WORLD_SIZE", 1)


def is_main_process() -> bool:
    """True on rank 0, the process that writes logs, checkpoints and reports.

    Example:
        >>> is_main_process()   # a single process is the main one
        True
        >>> # if gradwise.train.is_main_process(): write_report(...)
    """
    return process_rank() == 0


MODES = ("auto", True, False, "ddp", "fsdp")


def check_mode(mode: Any) -> Any:
    """``Trainer(distributed=...)`` checked: ``"ddp"`` is ``True``; ``FSDP(...)`` is kept."""
    if isinstance(mode, FSDP) or (isinstance(mode, bool) or mode in ("auto", "fsdp")):
        return mode
    if mode == "ddp":
        return True
    raise ConfigError(
        "Trainer: distributed must be 'auto', True, False, 'ddp', 'fsdp' or "
        f"gradwise.train.FSDP(...), got {mode!r}"
    )


def _forced(mode: Any) -> bool:
    return mode is True or as_fsdp(mode) is not None


def local_device(device: torch.device, mode: Any) -> torch.device:
    """``cuda`` without an index becomes ``cuda:LOCAL_RANK`` when this is a torchrun worker."""
    if mode is False or device.type != "cuda" or device.index is not None:
        return device
    if not (launched() or (_forced(mode) and "LOCAL_RANK" in os.environ)):
        return device
    count = max(torch.cuda.device_count(), 1)
    return torch.device("cuda", _env_int("LOCAL_RANK", process_rank()) % count)


def _destroy() -> None:
    if _initialized():
        _dist().destroy_process_group()


def setup(mode: Any, device: torch.device) -> Distributed | None:
    """The distributed context of a ``fit``, or None for a single process.

    ``mode="auto"`` runs DDP when a process group with several ranks exists or
    ``torchrun`` started several processes; ``True`` always (one process
    included), ``False`` never; ``"fsdp"`` or an :class:`FSDP` always, with
    sharded parameters. A process group this function creates is destroyed
    when the process exits.
    """
    if mode is False:
        return None
    fsdp = as_fsdp(mode)
    if _initialized():
        if mode == "auto" and _dist().get_world_size() == 1:
            return None
        return Distributed(device, fsdp)
    if mode == "auto" and not launched():
        return None
    needed = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    missing = [v for v in needed if v not in os.environ]
    if not torch.distributed.is_available() or missing:
        raise ConfigError(
            f"Trainer: distributed={mode!r} needs an initialised torch.distributed process group "
            f"or the variables torchrun sets ({', '.join(needed)}; missing: "
            f"{', '.join(missing) or 'none'}); launch with torchrun --nproc_per_node=N ..."
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    _dist().init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    atexit.register(_destroy)
    return Distributed(device, fsdp)


# -- combining metric states across ranks ---------------------------------------------


def check_metrics(metrics: Sequence[Metric]) -> None:
    """Fail before training when a metric's running state cannot be combined across ranks."""
    for m in metrics:
        get = getattr(m, "state_dict", None)
        state = get() if get is not None else None
        if not (isinstance(state, dict) and "sums" in state and "count" in state):
            raise ConfigError(
                f"metric {getattr(m, 'name', type(m).__name__)!r} cannot be combined across "
                "processes: under torchrun a metric needs state_dict()/load_state_dict() with "
                "{'sums': {name: tensor}, 'count': int}, whose sums and counts are added"
            )


def merge_states(metric: Metric, states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One metric state holding every example of ``states`` (one state per rank).

    Sums and counts add. ``R2``'s running mean and ``M2 = Σ(y − ȳ)²`` merge
    with Chan's parallel update, ``M2 = M2_a + M2_b + δ²·n_a·n_b/n``.
    """
    states = [s for s in states if s["count"]]
    if not states:
        return {"sums": {}, "count": 0}
    sums = {k: v.clone() for k, v in states[0]["sums"].items()}
    n_a = states[0]["count"]
    for s in states[1:]:
        n_b, b = s["count"], s["sums"]
        n = n_a + n_b
        for k, v in b.items():
            if isinstance(metric, R2) and k in ("mean", "m2"):
                continue
            sums[k] = sums[k] + v
        if isinstance(metric, R2):
            delta = b["mean"] - sums["mean"]
            sums["m2"] = sums["m2"] + b["m2"] + delta.square() * (n_a * n_b / n)
            sums["mean"] = sums["mean"] + delta * (n_b / n)
        n_a = n
    return {"sums": sums, "count": n_a}


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _compute(metric: Metric, state: dict[str, Any]) -> float:
    own = metric.state_dict()
    try:
        metric.load_state_dict(state)
        return metric.compute()
    finally:
        metric.load_state_dict(own)


# -- checkpoints ------------------------------------------------------------------------

PER_RANK = ("rng", "rng_epoch_start", "epoch_sums")
"""Snapshot entries that differ between ranks: each rank's RNGs and running epoch sums."""


def share_ranks(payload: dict[str, Any]) -> bool:
    """Gather every rank's own entries into ``payload``; True where the file is written.

    A snapshot taken under DDP carries ``"distributed": {"rank", "world_size"}``;
    this collective call replaces it by ``{"world_size", "ranks": [...]}`` with
    :data:`PER_RANK` of each rank, and returns True on rank 0 only. A
    single-process snapshot is left alone (True).
    """
    marker = payload.get("distributed")
    if marker is None:
        return True
    gathered: list[Any] = [None] * marker["world_size"]
    _dist().all_gather_object(gathered, _to_cpu({k: payload[k] for k in PER_RANK}))
    payload["distributed"] = {"world_size": marker["world_size"], "ranks": gathered}
    return marker["rank"] == 0


def for_rank(ckpt: dict[str, Any], path: Any, rank: int, world: int) -> dict[str, Any]:
    """The checkpoint as rank ``rank`` of ``world`` resumes it: its own RNGs and sums.

    A checkpoint taken mid-epoch resumes only with the number of processes
    that wrote it (the shards of the epoch depend on it); one taken at the end
    of an epoch resumes with any number, and ranks it has no state for start
    from rank 0's RNG states.
    """
    saved = ckpt.get("distributed")
    saved_world = 1 if saved is None else saved["world_size"]
    if saved_world != world and not ckpt["position"]["epoch_done"]:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was written by {saved_world} process(es) in the middle "
            f"of epoch {ckpt['position']['epoch']}; resume it with {saved_world} process(es), "
            f"not {world}, or resume from a checkpoint taken at the end of an epoch"
        )
    if saved is None or rank >= len(saved["ranks"]):
        return ckpt
    return {**ckpt, **saved["ranks"][rank]}


class Distributed:
    """The process group as one ``fit`` uses it (rank, world size, device, FSDP or DDP)."""

    def __init__(self, device: torch.device, fsdp: FSDP | None = None) -> None:
        dist = _dist()
        self.rank, self.world, self.device = dist.get_rank(), dist.get_world_size(), device
        self.fsdp = fsdp

    def shard(self, pad: bool) -> Shard:
        return Shard(self.rank, self.world, pad)

    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Under FSDP: shard ``model`` in place and rebind ``optimizer`` (before the run starts)."""
        if self.fsdp is not None:
            shard(model, optimizer, self.fsdp, self.device)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module | None:
        """``DistributedDataParallel`` around ``model`` (rank 0's weights are broadcast).

        None under FSDP: the sharded model is called directly, and FSDP
        reduce-scatters the gradients of every backward.
        """
        from torch.nn.parallel import DistributedDataParallel

        if self.fsdp is not None:
            return None
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def resolve(self, resume: Any, resolver: Callable[[Any], Path]) -> Path:
        """The checkpoint ``resolver(resume)`` gives on rank 0, on every rank.

        Every rank then loads that one checkpoint, even where a checkpoint
        directory looks different from another process (a shared file system
        lagging). The resolver is passed in (``resolve_checkpoint``) so that
        this module never imports the checkpoint module, which imports it.
        """
        found, error = None, None
        if self.rank == 0:
            try:
                found = str(resolver(resume))
            except CheckpointError as exc:
                error = str(exc)
        found, error = self.broadcast((found, error))
        if error is not None:
            raise CheckpointError(error)
        return Path(found)

    def warn_unsharded(self, loader: DataLoader | None) -> None:
        """Warn (rank 0) when a user's train DataLoader gives every rank all the data."""
        if loader is None or self.rank != 0 or self.world == 1:
            return
        sampler = getattr(loader, "sampler", None)
        if isinstance(loader.dataset, IterableDataset) or isinstance(
            sampler, (DistributedSampler, ShardSampler)
        ):
            return
        warnings.warn(
            f"Trainer.fit: under torchrun ({self.world} processes) the train DataLoader has a "
            f"{type(sampler).__name__}, so every process trains on all of it; give it a "
            "DistributedSampler, or pass the Dataset and let the Trainer shard it",
            stacklevel=3,
        )

    def set_epoch(self, batches: Any, epoch: int) -> None:
        """Tell a user's ``DistributedSampler`` the (0-based) epoch, so each epoch reshuffles."""
        sampler = getattr(getattr(batches, "loader", None), "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch - 1)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        box = [obj]
        _dist().broadcast_object_list(box, src=0)
        return box[0]

    def start_mean(self, value: Tensor) -> Any:
        """Start averaging a scalar over the ranks; ``.wait()`` returns the mean."""
        t = value.detach().clone()
        work = _dist().all_reduce(t, async_op=True)
        world = self.world

        class _Mean:
            def wait(self) -> Tensor:
                work.wait()
                return t.div_(world)

        return _Mean()

    def average_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Average gradients that DDP did not (a short last group without a known length)."""
        for p in params:
            if p.grad is not None:
                _dist().all_reduce(p.grad)
                p.grad.div_(self.world)

    def totals(
        self, loss_sum: Tensor | None, count: int, metrics: Sequence[Metric]
    ) -> tuple[float, dict[str, float]]:
        """Mean loss and metric values over the examples of every rank.

        Each rank's ``Σ loss_b·n_b``, example count and metric states are
        gathered and added in rank order, so every rank gets the same numbers.
        """
        mine = {
            "loss_sum": 0.0 if loss_sum is None else float(loss_sum),
            "count": count,
            "metrics": [_to_cpu(m.state_dict()) for m in metrics],
        }
        gathered: list[Any] = [None] * self.world
        _dist().all_gather_object(gathered, mine)
        total = sum(g["count"] for g in gathered)
        loss = sum(g["loss_sum"] for g in gathered) / total if total else float("nan")
        values = {
            m.name: _compute(m, merge_states(m, [g["metrics"][i] for g in gathered]))
            for i, m in enumerate(metrics)
        }
        return loss, values
