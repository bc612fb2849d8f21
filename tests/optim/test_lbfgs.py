"""L-BFGS: complex parameters, maximize, state_dict swaps with torch, clear errors."""

from __future__ import annotations

import copy

import pytest
import torch

from gradwise import optim as go
from gradwise.errors import ConfigError


def _fit(make, w0, steps=3, sign=1.0, swap_to=None):
    w = torch.nn.Parameter(w0.clone())
    target = torch.arange(w.numel(), dtype=w.real.dtype).reshape(w.shape)
    opt = make([w])

    def closure():
        opt.zero_grad()
        loss = sign * (((w - target).abs() ** 2).sum() + (w.real**4).sum())
        loss.backward()
        return loss

    for i in range(steps):
        if swap_to is not None and i == steps // 2:
            sd = copy.deepcopy(opt.state_dict())
            opt = swap_to([w])
            opt.load_state_dict(sd)
        opt.step(closure)
    return w.detach()


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_complex_parameters_follow_torch(ls):
    w0 = torch.randn(3, 2, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    ref = _fit(lambda ps: torch.optim.LBFGS(ps, lr=0.5, line_search_fn=ls), w0)
    ours = _fit(lambda ps: go.lbfgs(ps, lr=0.5, line_search_fn=ls), w0)
    assert (ours - ref).abs().max().item() < 1e-10
    assert (ref - w0).abs().max().item() > 0.1


def test_maximize_is_minimizing_the_negated_loss():
    w0 = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    down = _fit(lambda ps: go.lbfgs(ps, line_search_fn="strong_wolfe"), w0)
    up = _fit(lambda ps: go.lbfgs(ps, line_search_fn="strong_wolfe", maximize=True), w0, sign=-1.0)
    assert torch.equal(up, down)


@pytest.mark.parametrize("direction", ["torch->ours", "ours->torch"])
def test_state_dict_swaps_with_torch(direction):
    w0 = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def theirs(ps):
        return torch.optim.LBFGS(ps, max_iter=3, history_size=4, line_search_fn="strong_wolfe")

    def ours(ps):
        return go.lbfgs(ps, max_iter=3, history_size=4, line_search_fn="strong_wolfe")

    first, second = (theirs, ours) if direction == "torch->ours" else (ours, theirs)
    ref = _fit(theirs, w0, steps=4)
    got = _fit(first, w0, steps=4, swap_to=second)
    assert (got - ref).abs().max().item() < 1e-12


@pytest.mark.parametrize("kw, match", [
    (dict(line_search_fn="armijo"), "line_search_fn must be None or 'strong_wolfe'"),
    (dict(max_iter=0), "max_iter must be an integer >= 1"),
    (dict(history_size=2.5), "history_size must be an integer >= 1"),
    (dict(lr=-1.0), "lbfgs: lr must be >= 0"),
])
def test_bad_options_name_the_field(kw, match):
    with pytest.raises(ConfigError, match=match):
        go.lbfgs([torch.nn.Parameter(torch.zeros(2))], **kw)


def test_one_group_only_and_closure_required():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ConfigError, match="one param group only"):
        go.lbfgs([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ConfigError, match="needs a closure"):
        go.lbfgs([a]).step(None)
