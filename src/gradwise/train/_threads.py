"""How many CPU threads torch uses while a :class:`Trainer` fits: from the model size and the free cores.

A small model's step is a few hundred small operations; with more than one
thread each of them pays for waking and joining the others, and on a busy
machine those threads wait for cores that other processes hold (digits on
2 busy cores: 21.5 s with 2 threads, 4.7 s with 1). The rule
(:func:`choose_threads`):

* under ``SMALL`` (1M) parameters: 1 thread;
* else the cores that are free by the 1-minute load average
  (``cores - floor(load)``), at least 1 and at most ``cores``.

The user's choice wins over the rule: ``GRADWISE_THREADS=N`` (or ``auto``),
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` in the environment, or a
``torch.set_num_threads`` call made after importing gradwise. The count is
set for the length of ``fit`` and restored afterwards.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any

import torch

from gradwise.errors import ConfigError

ENV = "GRADWISE_THREADS"
SMALL = 1_000_000  # parameters: below this one thread is fastest

_AT_IMPORT = torch.get_num_threads()
_active = 0  # depth of auto_threads blocks (a fit inside a fit keeps the outer choice)


def choose_threads(n_params: int, cores: int, load: float | None = None) -> int:
    """The torch thread count for a model of ``n_params`` on ``cores`` CPUs at ``load``.

    Args:
        n_params: the model's parameter count.
        cores: CPUs this process may use.
        load: the 1-minute load average (``os.getloadavg()[0]``), or None if unknown
            (then every core counts as free).

    Returns 1 for a model under ``SMALL`` parameters or when the load leaves
    no core free, else ``min(cores, cores - floor(load))``.

    >>> choose_threads(17_000, cores=16, load=0.0)
    1
    >>> choose_threads(22_000_000, cores=16, load=3.5)
    13
    >>> choose_threads(22_000_000, cores=2, load=2.4)
    1
    """
    cores = max(1, int(cores))
    if n_params < SMALL:
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
    if raw and raw.lower() != "auto":
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"{ENV}: a whole number >= 1 or 'auto', got {raw!r}")
        return n
    if raw.lower() == "auto":
        return None
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        return "user"
    if torch.get_num_threads() != _AT_IMPORT:  # torch.set_num_threads after import
        return "user"
    return None


@contextlib.contextmanager
def auto_threads(model: Any) -> Iterator[int]:
    """Set torch's thread count by :func:`choose_threads` (or the user's choice) for a block.

    Yields the count in force; restores the previous one on exit.

    >>> with auto_threads(torch.nn.Linear(4, 2)) as n:
    ...     n >= 1
    True
    """
    global _active
    before = torch.get_num_threads()
    choice = None if _active else threads_override()
    if _active or choice == "user":
        n = before
    elif isinstance(choice, int):
        n = choice
    else:
        n_params = sum(p.numel() for p in model.parameters())
        n = choose_threads(n_params, _cores(), _load())
    _active += 1
    try:
        if n != before:
            torch.set_num_threads(n)
        yield n
    finally:
        _active -= 1
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
