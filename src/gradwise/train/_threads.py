"""How many CPU threads torch uses while a :class:`Trainer` fits: from the work per step and the free cores.

A step whose operations are small (a small MLP on rows) pays, with more than
one thread, for waking and joining the others on every operation, and on a
busy machine those threads wait for cores that other processes hold (digits
on 2 busy cores: 21.5 s with 2 threads, 4.7 s with 1). A step with large
operations (a transformer on 512-token rows) splits them usefully. The
rule (:func:`choose_threads`) weighs the work of one step,
``parameters x positions per batch`` (:func:`step_work`, about the
multiply-adds of a forward pass):

* under ``LIGHT`` (64M, a 1M-parameter MLP at batch 64): 1 thread;
* else the cores that are free by the 1-minute load average
  (``cores - floor(load)``), at least 1 and at most ``cores``.

The user's choice wins over the rule: ``Trainer(threads=N)`` or
``training.threads: N`` in a config, then ``GRADWISE_THREADS=N`` (or ``auto``),
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` in the environment, or a
``torch.set_num_threads`` call made after importing gradwise. The count is
set for the length of ``fit`` and restored afterwards.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import IterableDataset

from gradwise.errors import ConfigError

ENV = "GRADWISE_THREADS"
LIGHT = 64_000_000  # parameters x positions per batch: below this one thread is fastest

_AT_IMPORT = torch.get_num_threads()
_active = 0  # depth of auto_threads blocks (a fit inside a fit keeps the outer choice)


def parse_threads(value: Any) -> int | str:
    """A thread setting: a whole number >= 1, or ``"auto"`` (the rule); ValueError otherwise.

    >>> parse_threads(2), parse_threads("auto"), parse_threads("3")
    (2, 'auto', 3)
    """
    if isinstance(value, str):
        raw = value.strip()
        if raw.lower() == "auto":
            return "auto"
        value = int(raw) if raw.isdigit() else raw
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"a whole number >= 1 or 'auto', got {value!r}")
    return value


def check_threads(value: Any, where: str = "Trainer") -> int | str:
    """:func:`parse_threads`, raising ``ConfigError("<where>: threads ...")`` for a bad value."""
    try:
        return parse_threads(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: threads must be {exc}") from None


def positions(inputs: Any) -> int:
    """Positions in one batch of ``inputs``: what each parameter is applied to.

    Integer tensors (token ids) count every element (``batch x length``);
    floating tensors every element but the last (feature) dimension, so a
    ``(64, 30)`` batch of rows has 64 positions. Tuples, lists and dicts count
    their largest tensor; anything else counts 1.

    >>> positions(torch.zeros(64, 30)), positions(torch.zeros(8, 512, dtype=torch.long))
    (64, 4096)
    >>> positions({"input_ids": torch.zeros(8, 512, dtype=torch.long), "mask": None})
    4096
    """
    if isinstance(inputs, Tensor):
        if inputs.ndim == 0:
            return 1
        if inputs.is_floating_point() or inputs.is_complex():
            return max(1, inputs.numel() // max(1, inputs.shape[-1])) if inputs.ndim > 1 else inputs.numel()
        return max(1, inputs.numel())
    parts = inputs.values() if isinstance(inputs, Mapping) else inputs
    if isinstance(parts, (tuple, list)) or isinstance(inputs, Mapping):
        return max((positions(x) for x in parts), default=1)
    return 1


def step_work(model: Any, inputs: Any = None) -> int:
    """The work of one step: ``parameters x positions(inputs)`` (inputs None: 1 position).

    >>> step_work(torch.nn.Linear(30, 2), torch.zeros(64, 30))
    3968
    """
    n_params = sum(p.numel() for p in model.parameters())
    return n_params * (1 if inputs is None else positions(inputs))


def choose_threads(work: int, cores: int, load: float | None = None) -> int:
    """The torch thread count for a step of ``work`` (:func:`step_work`) on ``cores`` CPUs at ``load``.

    Args:
        work: parameters x positions per batch.
        cores: CPUs this process may use.
        load: the 1-minute load average (``os.getloadavg()[0]``), or None if unknown
            (then every core counts as free).

    Returns 1 for work under ``LIGHT`` or when the load leaves no core free,
    else ``min(cores, cores - floor(load))``.

    >>> choose_threads(17_226 * 64, cores=16, load=0.0)  # the digits MLP, batch 64
    1
    >>> choose_threads(828_544 * 8 * 512, cores=2, load=0.4)  # a 0.83M Llama, 8 x 512 tokens
    2
    >>> choose_threads(828_544 * 8 * 512, cores=2, load=11.0)  # ... on 2 busy cores
    1
    """
    cores = max(1, int(cores))
    if work < LIGHT:
        return 1
    if load is None or not math.isfinite(load):
        return cores
    return max(1, min(cores, cores - math.floor(max(0.0, load))))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return None


def threads_override() -> int | str | None:
    """The user's choice: an int from ``GRADWISE_THREADS``, ``"user"`` when theirs stands, else None."""
    raw = os.environ.get(ENV, "").strip()
    if raw:
        try:
            n = parse_threads(raw)
        except ValueError:
            raise ConfigError(f"{ENV}: a whole number >= 1 or 'auto', got {raw!r}") from None
        return None if n == "auto" else n
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        return "user"
    if torch.get_num_threads() != _AT_IMPORT:  # torch.set_num_threads after import
        return "user"
    return None


def first_inputs(batches: Any) -> Any:
    """The inputs of the first training batch of a Trainer's batches (None when unknown).

    Tensor data is sliced; a DataLoader is drawn from once, with its (and
    its sampler's) generator and torch's RNG put back, so the run does not
    change. A loader over an ``IterableDataset`` (a stream may not restart)
    or with workers is not drawn from: None (one position per batch).
    """
    inputs, size = getattr(batches, "inputs", None), getattr(batches, "batch_size", None)
    if inputs is not None:
        return tuple(x[:size] for x in inputs) if size else inputs
    loader = getattr(batches, "loader", None)
    if loader is None:
        return batches if isinstance(batches, (Tensor, tuple, list, Mapping)) else None
    if isinstance(loader.dataset, IterableDataset) or loader.num_workers > 0:
        return None  # a stream may not restart; workers would start twice: not drawn from
    sampler = getattr(loader.batch_sampler, "sampler", loader.sampler)
    gens = [g for g in (loader.generator, getattr(sampler, "generator", None)) if g is not None]
    saved = [g.get_state() for g in gens]
    rng = torch.get_rng_state()
    try:
        for batch in loader:
            return batch[:-1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else batch
    finally:
        torch.set_rng_state(rng)
        for g, state in zip(gens, saved):
            g.set_state(state)
    return None


@contextlib.contextmanager
def auto_threads(model: Any, data: Any = None, threads: int | str = "auto") -> Iterator[int]:
    """Set torch's thread count for a block: ``threads``, else the user's, else :func:`choose_threads`.

    Args:
        model: the model trained in the block (its parameter count).
        data: one batch of inputs, or the Trainer's batches (their first batch
            is measured); None counts one position per batch.
        threads: a count >= 1 that wins over everything, or ``"auto"``.

    Yields the count in force; restores the previous one on exit.

    >>> with auto_threads(torch.nn.Linear(4, 2), torch.zeros(16, 4)) as n:
    ...     n
    1
    """
    global _active
    before = torch.get_num_threads()
    threads = parse_threads(threads)
    choice = threads if threads != "auto" else None if _active else threads_override()
    if choice == "user" or (_active and choice is None):
        n = before
    elif isinstance(choice, int):
        n = choice
    else:
        n = choose_threads(step_work(model, first_inputs(data)), _cores(), _load())
    _active += 1
    try:
        if n != before:
            torch.set_num_threads(n)
        yield n
    finally:
        _active -= 1
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
