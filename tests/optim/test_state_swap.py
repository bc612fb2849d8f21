"""state_dicts swap with torch.optim's in both directions, for every torch algorithm we alias."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gradwise import optim as go

F64 = torch.float64
# alias name -> (torch class, kwargs both take)
PAIRS = {
    "sgd": (torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    "adam": (torch.optim.Adam, dict(lr=1e-2, amsgrad=True)),
    "adamw": (torch.optim.AdamW, dict(lr=1e-2)),
    "rmsprop": (torch.optim.RMSprop, dict(lr=1e-3, centered=True, momentum=0.5)),
    "adagrad": (torch.optim.Adagrad, dict(lr=0.05)),
    "nadam": (torch.optim.NAdam, dict(lr=1e-2, decoupled_weight_decay=True, weight_decay=0.1)),
    "radam": (torch.optim.RAdam, dict(lr=1e-2)),
    "adamax": (torch.optim.Adamax, dict(lr=1e-2)),
    "adadelta": (torch.optim.Adadelta, dict(lr=1.0)),
    "asgd": (torch.optim.ASGD, dict(lr=0.05, t0=5)),
    "rprop": (torch.optim.Rprop, dict(lr=1e-3)),
}


def _steps(net, opt, n):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(32, 4, generator=g, dtype=F64), torch.randn(32, 1, generator=g, dtype=F64)
    for _ in range(n):
        opt.zero_grad()
        nn.functional.mse_loss(net(X), y).backward()
        opt.step()


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).to(F64)


def _flat(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("direction", ["torch->ours", "ours->torch"])
def test_state_dict_swaps_with_torch(name, direction):
    cls, kw = PAIRS[name]

    def ours(ps):
        return go.ALIASES[name](ps, **kw, decay_mask="all")

    def theirs(ps):
        return cls(ps, **kw)

    first, second = (theirs, ours) if direction == "torch->ours" else (ours, theirs)
    straight = _net()
    opt = theirs(straight.parameters())
    _steps(straight, opt, 20)
    a = _net()
    opt_a = first(a.parameters())
    _steps(a, opt_a, 10)
    b = _net()
    b.load_state_dict(a.state_dict())
    opt_b = second(b.parameters())
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    assert set(opt_b.state[next(b.parameters())]) == set(opt_a.state[next(a.parameters())])
    _steps(b, opt_b, 10)
    assert (_flat(b) - _flat(straight)).abs().max().item() < 1e-9
