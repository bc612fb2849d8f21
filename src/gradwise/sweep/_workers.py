"""The workers of one study on one machine, and the share of the cores each one takes.

Workers started separately (``gradwise sweep --storage URL`` twice on one
machine, as on several machines) do not know of each other, and each would
run torch at its default thread count, one thread per core: two workers on
two cores then run four threads that wait for each other's cores. So every
worker puts itself in the study (a study user attribute ``"worker HOST:PID"``)
and, before each trial, counts the live workers of its own host:

    threads = max(1, cores // local_workers)

A worker alone on its machine keeps torch's count (the Trainer then picks its
own, :mod:`gradwise.train._threads`). The user's choice wins over the share:
``GRADWISE_THREADS``, ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` or a
``torch.set_num_threads`` call; ``--jobs N`` caps it at ``cores // N``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

PREFIX = "worker "  # study user attribute of a worker: PREFIX + "HOST:PID"


def worker_id() -> str:
    """``host:pid`` of this process, kept on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def register(study: Any) -> str:
    """Put this worker in the study (one write); returns its attribute key."""
    key = PREFIX + worker_id()
    study.set_user_attr(key, True)
    return key


def unregister(study: Any, key: str) -> None:
    """Mark this worker gone; a worker killed, or cut off from the database, is
    recognised by its dead process instead (so a failure here is not raised)."""
    try:
        study.set_user_attr(key, False)
    except Exception:  # the error that ends the worker is the one to show
        pass


def local_workers(user_attrs: dict[str, Any], me: str | None = None) -> int:
    """Live workers on this host among a study's ``user_attrs`` (``me`` always counts).

    >>> me = worker_id()
    >>> local_workers({PREFIX + me: True, PREFIX + "other-host:1": True, "sweep": {}}, me)
    1
    """
    me = worker_id() if me is None else me
    host = me.rpartition(":")[0]
    n = 0
    for key, on in user_attrs.items():
        if not key.startswith(PREFIX) or on is not True:
            continue
        h, _, pid = key[len(PREFIX) :].rpartition(":")
        if key == PREFIX + me or (h == host and pid.isdigit() and alive(int(pid))):
            n += 1
    return max(1, n)


def thread_share(n_cores: int, workers: int, cap: int | None = None) -> int | None:
    """Torch threads for one of ``workers`` on ``n_cores``; None: alone, keep torch's count.

    ``cap`` (``--jobs``' share) bounds it and applies even to a lone worker.

    >>> thread_share(2, 2), thread_share(16, 3), thread_share(8, 1), thread_share(8, 1, cap=4)
    (1, 5, None, 4)
    >>> thread_share(2, 5)  # more workers than cores: one thread each
    1
    """
    if workers <= 1 and cap is None:
        return None
    share = max(1, n_cores // max(1, workers))
    return share if cap is None else max(1, min(cap, share))
