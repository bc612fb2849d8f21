"""Shared pieces of the optimizer tests: a small MLP problem and a trajectory runner."""

from __future__ import annotations

from collections.abc import Callable

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
