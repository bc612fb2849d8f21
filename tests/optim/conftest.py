"""Shared pieces of the optimizer tests: a small MLP problem and a trajectory runner."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn


def _problem(dtype: torch.dtype = torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 5, generator=g, dtype=dtype)
    y = torch.randn(64, 1, generator=g, dtype=dtype)

    def model() -> nn.Module:
        torch.manual_seed(seed + 1)
        net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
        return net.to(dtype)

    return X, y, model


def _train(
    make_opt: Callable[[nn.Module], torch.optim.Optimizer],
    steps: int = 200,
    dtype: torch.dtype = torch.float32,
    perturb: bool = False,
    scheduler: Callable | None = None,
) -> torch.Tensor:
    X, y, model = _problem(dtype)
    net = model()
    if perturb:
        # Move every weight by one ulp: how far torch's own trajectory moves
        # from that is the round-off scale against which we compare.
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.nextafter(p, torch.full_like(p, 10.0)))
    opt = make_opt(net)
    sched = scheduler(opt) if scheduler else None
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(net(X), y).backward()
        opt.step()
        if sched is not None:
            sched.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.fixture(autouse=True)
def _one_thread():
    # These tests run thousands of tiny ops; with several intra-op threads on
    # a busy machine the threads' hand-offs cost more than the arithmetic.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def problem():
    """``(X, y, make_model)`` for a 5-16-1 tanh MLP regression."""
    return _problem()


@pytest.fixture
def train():
    """``train(make_opt, steps=200, dtype=float32, perturb=False, scheduler=None)`` -> flat params."""
    return _train


# -- torch's optim_db, read in a subprocess ----------------------------------
# Importing torch.testing._internal.common_optimizers changes global torch
# state (default dtype hooks, test flags) and needs expecttest, so a child
# process imports it and prints the configurations as JSON; tensors become
# {"__tensor__": value, "dtype": name} and tuples become lists.

_CHILD = r"""
import json, sys, torch
from torch.testing._internal.common_optimizers import optim_db

def enc(v):
    if isinstance(v, torch.Tensor):
        return {"__tensor__": v.item(), "dtype": str(v.dtype).removeprefix("torch.")}
    if isinstance(v, (tuple, list)):
        return [enc(x) for x in v]
    return v

out = {}
for dtype in (torch.float32, torch.float64):
    for info in optim_db:
        name = info.optim_cls.__name__
        rows = []
        for i in info.optim_inputs_func(device="cpu", dtype=dtype):
            rows.append({"desc": i.desc, "kwargs": {k: enc(v) for k, v in i.kwargs.items()},
                         "params": i.params is not None})
        out.setdefault(str(dtype).removeprefix("torch."), {})[name] = rows
json.dump(out, sys.stdout)
"""


def _dec(v: Any) -> Any:
    if isinstance(v, dict) and "__tensor__" in v:
        return torch.tensor(v["__tensor__"], dtype=getattr(torch, v["dtype"]))
    if isinstance(v, list):
        return tuple(_dec(x) for x in v)
    return v


@functools.cache
def _raw() -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(proc.stdout)


def configs(torch_name: str, dtype: torch.dtype) -> list[tuple[str, dict[str, Any]]]:
    """``(desc, kwargs)`` of every ``optim_db`` input of ``torch_name`` (``"Adam"``) for ``dtype``."""
    rows = _raw()[str(dtype).removeprefix("torch.")][torch_name]
    return [(r["desc"], {k: _dec(v) for k, v in r["kwargs"].items()}) for r in rows]


@pytest.fixture(scope="session")
def optim_db():
    """``optim_db(torch_name, dtype)`` -> ``[(desc, kwargs), ...]`` from torch's optimizer tests."""
    return configs
