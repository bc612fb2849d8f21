"""The learning-rate range test (Smith 2015/2017): `lr_find`."""

from __future__ import annotations

import copy
import math
import os
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradwise._io import new_figure, save_png
from gradwise.errors import ConfigError, DataError
from gradwise.optim import set_lr
from gradwise.schedules._base import check_float, check_int
from gradwise.schedules._suggest import SUGGESTIONS, suggest


@dataclass
class LRFinderResult:
    """What a range test measured, and the learning rate it suggests.

    Attributes:
        lrs: the top group's lr at each step of the sweep.
        losses: the smoothed loss after each step (bias-corrected EMA).
        raw_losses: the batch loss of each step.
        suggestion: the suggested lr for the top group (the group with the
            largest base lr).
        suggestion_rule: how ``suggestion`` was chosen, in words.
        suggestion_index: the index of the swept lr nearest the suggestion.
        group_lrs: the suggested lr of every param group (``suggestion *
            group_ratios[i]``), ready to write back into the optimizer.
        group_ratios: each group's base lr divided by the largest one.
        stopped_early: True when the loss diverged before ``num_steps``.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggestion: float
    suggestion_rule: str
    suggestion_index: int
    group_lrs: list[float]
    group_ratios: list[float] = field(default_factory=lambda: [1.0])
    stopped_early: bool = False

    def plot(self, path: str | os.PathLike) -> Path:
        """Draw loss against lr (log axis) with the suggestion marked; write a PNG."""
        fig = new_figure(6.0, 4.0)
        ax = fig.add_subplot()
        ax.plot(self.lrs, self.raw_losses, color="tab:blue", alpha=0.25, label="batch loss")
        ax.plot(self.lrs, self.losses, color="tab:blue", label="smoothed loss")
        ax.axvline(
            self.suggestion,
            color="tab:red",
            linestyle="--",
            label=f"suggestion {self.suggestion:.3g}",
        )
        ax.set_xscale("log")
        finite = [v for v in self.losses if math.isfinite(v)]
        if finite:
            # The last points after divergence would squash the useful part of the curve.
            low, high = min(finite), finite[0]
            pad = 0.1 * max(high - low, 1e-12)
            ax.set_ylim(low - pad, max(high, low) + 4 * pad)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title(f"LR range test ({self.suggestion_rule})", fontsize=9)
        ax.legend()
        ax.grid(alpha=0.3, which="both")
        return save_png(fig, path)


def lr_find(
    model: torch.nn.Module,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    data: Any,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    smooth: float = 0.98,
    stop_factor: float = 4.0,
    device: str | torch.device | None = None,
    batch_size: int = 64,
    rule: str = "minimum",
) -> LRFinderResult:
    """Run the learning-rate range test and leave model, optimizer and RNGs as they were.

    Trains for ``num_steps`` batches while the lr grows exponentially,
    ``lr_i = min_lr * (max_lr / min_lr) ** (i / (num_steps - 1))``, and
    records the loss of each batch. The smoothed loss is an exponential
    moving average with bias correction, ``a_i = smooth * a_{i-1} + (1 -
    smooth) * loss_i``, ``losses[i] = a_i / (1 - smooth ** (i + 1))``. The
    sweep stops early once the smoothed loss exceeds ``stop_factor`` times
    its minimum (positive losses) or a loss is NaN/inf.

    Param groups: each group's base rate is its ``initial_lr`` (set when a
    scheduler is attached) or else its ``lr``. Every group moves together:
    ``group lr = lr_i * base_g / max_g base_g``, so the group with the largest
    base sweeps ``min_lr -> max_lr`` and discriminative ratios hold.

    Suggestion rules (``rule``): ``"minimum"`` (default), the lr of the
    smallest smoothed loss divided by 10; ``"steepest"``, the lr where the
    smoothed loss falls fastest against log lr, searched before the
    minimum. Both skip the first tenth of the sweep, where the average is
    still settling; see docs/schedules.md for why the default is the
    minimum rule.

    Sharded models (FSDP2, parameters are DTensors): call it on every rank
    with that rank's own data; each step's loss is averaged over the ranks
    (as the gradients are), so every rank records the curve of the global
    batch and returns the same suggestion as one process fed the
    concatenated batches. ``device`` cannot move a sharded model.

    Restoring: every parameter, buffer and gradient of ``model`` is copied
    before and written back after (bit-identical); training/eval modes are
    restored; a given optimizer gets back a deep copy of its
    ``state_dict``; the torch (CPU and CUDA), numpy and Python ``random``
    states are restored. This happens even when the sweep raises.

    Args:
        model: the module to probe.
        loss_fn: ``loss_fn(model(x), y)`` returns a scalar tensor.
        data: a DataLoader (or any re-iterable of ``(x, y)`` batches) or a
            tuple ``(X, y)`` of tensors/arrays, batched by ``batch_size``
            in a random order drawn from torch's RNG. It is cycled when
            exhausted.
        optimizer: the optimizer to probe with; its groups' ratios are kept.
            Default: ``torch.optim.SGD(momentum=0.9)`` over the trainable
            parameters, one group.
        min_lr, max_lr, num_steps: the sweep.
        smooth: EMA factor in [0, 1); 0 disables smoothing.
        stop_factor: divergence threshold (> 1); ``inf`` never stops early.
        device: move the model and batches there for the sweep (the model
            is moved back); default: the device of the model's parameters.
        batch_size: batch size for tuple data.
        rule: ``"minimum"`` or ``"steepest"``.

    >>> import torch
    >>> from gradwise.schedules import lr_find
    >>> X, y = torch.randn(256, 4), torch.randn(256, 1)
    >>> res = lr_find(torch.nn.Linear(4, 1), torch.nn.functional.mse_loss, (X, y))
    >>> res.suggestion > 0
    True
    """
    min_lr = check_float("lr_find", "min_lr", min_lr, 0.0, low_open=True)
    max_lr = check_float("lr_find", "max_lr", max_lr, min_lr, low_open=True)
    num_steps = check_int("lr_find", "num_steps", num_steps, 2)
    smooth = check_float("lr_find", "smooth", smooth, 0.0, 1.0, high_open=True)
    if not (isinstance(stop_factor, (int, float)) and stop_factor > 1):
        raise ConfigError(f"lr_find: stop_factor must be a number > 1, got {stop_factor!r}")
    batch_size = check_int("lr_find", "batch_size", batch_size, 1)
    if rule not in SUGGESTIONS:
        raise ConfigError(f"lr_find: rule must be one of {', '.join(SUGGESTIONS)}, got {rule!r}")

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("lr_find: the model has no trainable parameters")
    home = params[0].device
    target = torch.device(device) if device is not None else home

    own_optimizer = optimizer is None
    if optimizer is None:
        optimizer = torch.optim.SGD(params, lr=min_lr, momentum=0.9)
    bases = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
    top = max(bases)
    if not top > 0:
        raise ConfigError(f"lr_find: every param group has lr 0 ({bases}); nothing to scale")
    ratios = [b / top for b in bases]

    group = _sharded_group(model)
    if group is not None and device is not None and target != home:
        raise ConfigError(
            f"lr_find: device={device!r} would move a sharded (FSDP) model; it runs where its "
            "shards are, so leave device unset"
        )
    if group is not None:
        _check_sharded_optimizer(optimizer)
    snapshot = _snapshot(model)
    opt_state = None if own_optimizer else copy.deepcopy(optimizer.state_dict())
    rng = _rng_state(target)
    moved = target != home
    try:
        if moved:
            model.to(target)
            if opt_state is not None:
                # Optimizer.load_state_dict casts the state onto the params' new device.
                optimizer.load_state_dict(copy.deepcopy(opt_state))
        model.train()
        lrs, raw, smoothed, stopped = _sweep(
            model,
            loss_fn,
            _batches(data, batch_size),
            optimizer,
            ratios,
            target,
            min_lr,
            max_lr,
            num_steps,
            smooth,
            float(stop_factor),
            group,
        )
    finally:
        if moved:
            model.to(home)
        _restore(model, snapshot)
        if opt_state is not None:
            optimizer.load_state_dict(opt_state)
        _set_rng_state(rng)

    if not lrs:
        raise DataError("lr_find: the first batch already gave a NaN/inf loss")
    value, index, text = suggest(lrs, smoothed, rule)
    return LRFinderResult(
        lrs=lrs,
        losses=smoothed,
        raw_losses=raw,
        suggestion=value,
        suggestion_rule=text,
        suggestion_index=index,
        group_lrs=[value * r for r in ratios],
        group_ratios=ratios,
        stopped_early=stopped,
    )


def _sweep(
    model: torch.nn.Module,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    batches: Iterator[Any],
    optimizer: torch.optim.Optimizer,
    ratios: list[float],
    device: torch.device,
    min_lr: float,
    max_lr: float,
    num_steps: int,
    smooth: float,
    stop_factor: float,
    group: Any = None,
) -> tuple[list[float], list[float], list[float], bool]:
    lrs: list[float] = []
    raw: list[float] = []
    smoothed: list[float] = []
    avg, best = 0.0, math.inf
    growth = math.log(max_lr / min_lr) / (num_steps - 1)
    for i in range(num_steps):
        lr = min_lr * math.exp(growth * i)
        set_lr(optimizer, [lr * ratio for ratio in ratios])
        x, y = _to_device(next(batches), device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise DataError(f"lr_find: loss_fn must return a scalar tensor, got {loss!r}")
        value = _global_loss(loss.detach(), group)
        if not math.isfinite(value):
            return lrs, raw, smoothed, True
        loss.backward()
        optimizer.step()
        avg = smooth * avg + (1.0 - smooth) * value
        current = avg / (1.0 - smooth ** (i + 1))
        lrs.append(lr)
        raw.append(value)
        smoothed.append(current)
        best = min(best, current)
        if i > 0 and best > 0 and current > stop_factor * best:
            return lrs, raw, smoothed, True
    return lrs, raw, smoothed, False


def _sharded_group(model: torch.nn.Module) -> Any:
    """The process group of a model whose parameters are sharded DTensors (FSDP2), else None."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    from torch.distributed.tensor import DTensor

    for p in model.parameters():
        if isinstance(p, DTensor):
            return p.device_mesh.get_group()
    return None


def _check_sharded_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Refuse an optimizer whose update needs whole tensors (muon, lamb, ...) on shards."""
    from gradwise.train._fsdp import check_optimizer

    try:
        check_optimizer(optimizer)
    except ConfigError as exc:
        text = str(exc).replace("Trainer: distributed='fsdp'", "lr_find on a sharded (FSDP) model")
        raise ConfigError(text) from None


def _global_loss(loss: torch.Tensor, group: Any) -> float:
    """The batch loss; on a sharded model the mean over ranks (each rank feeds its own batch).

    Every rank then sees the loss of the global batch, so all of them record
    the same curve, stop at the same step and suggest the same lr (a rank
    stopping alone would leave the others waiting in a collective).
    """
    if group is None:
        return float(loss)
    total = loss.to(torch.float64).reshape(1).clone()
    torch.distributed.all_reduce(total, group=group)
    return float(total) / torch.distributed.get_world_size(group)


def _batches(data: Any, batch_size: int) -> Iterator[Any]:
    """Yield batches forever: shuffled slices of ``(X, y)``, or a re-iterated loader."""
    if isinstance(data, tuple) and len(data) == 2:
        X, y = (torch.as_tensor(a) for a in data)
        if len(X) != len(y) or len(X) == 0:
            raise DataError(
                f"lr_find: X and y must have the same, non-zero number of rows, got {len(X)} and {len(y)}"
            )
        while True:
            order = torch.randperm(len(X))
            for start in range(0, len(X), batch_size):
                idx = order[start : start + batch_size]
                yield X[idx], y[idx]
    if not isinstance(data, Iterable):
        raise DataError(
            f"lr_find: data must be a DataLoader, an iterable of (x, y) batches or an (X, y) "
            f"tuple, got {type(data).__name__}"
        )
    while True:
        empty = True
        for batch in data:
            empty = False
            yield batch
        if empty:
            raise DataError("lr_find: data yielded no batches")


def _to_device(batch: Any, device: torch.device) -> tuple[Any, Any]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise DataError(
            f"lr_find: each batch must be an (inputs, targets) pair, got {type(batch).__name__}"
        )
    x, y = batch
    move = lambda t: t.to(device) if isinstance(t, torch.Tensor) else t  # noqa: E731
    return move(x), move(y)


def _snapshot(model: torch.nn.Module) -> dict[str, Any]:
    # named_buffers also covers non-persistent buffers, which state_dict skips.
    return {
        "params": [
            (p, p.detach().clone(), None if p.grad is None else p.grad.detach().clone())
            for p in model.parameters()
        ],
        "buffers": {name: b.detach().clone() for name, b in model.named_buffers()},
        "modes": [(m, m.training) for m in model.modules()],
    }


def _restore(model: torch.nn.Module, snapshot: dict[str, Any]) -> None:
    with torch.no_grad():
        for param, value, grad in snapshot["params"]:
            param.copy_(value)
            param.grad = grad
        for name, buf in model.named_buffers():
            saved = snapshot["buffers"].get(name)
            if saved is not None:
                buf.copy_(saved)
    for module, training in snapshot["modes"]:
        module.training = training


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    # A sweep on CUDA initialises it, so its generators are saved first then too.
    if torch.cuda.is_available() and (torch.cuda.is_initialized() or device.type == "cuda"):
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])
