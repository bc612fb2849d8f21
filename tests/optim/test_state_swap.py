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
    "adafactor": (torch.optim.Adafactor, dict(lr=1e-2, weight_decay=0.1)),
    "muon": (torch.optim.Muon, dict(lr=2e-2)),
}


def _steps(net, opt, n):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(32, 4, generator=g, dtype=F64), torch.randn(32, 1, generator=g, dtype=F64)
    for _ in range(n):
        opt.zero_grad()
        nn.functional.mse_loss(net(X), y).backward()
        opt.step()


def _net(bias=True):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8, bias=bias), nn.Tanh(), nn.Linear(8, 1, bias=bias)).to(F64)


def _flat(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("direction", ["torch->ours", "ours->torch"])
def test_state_dict_swaps_with_torch(name, direction):
    cls, kw = PAIRS[name]

    extra = {} if name == "muon" else {"decay_mask": "all"}
    bias = name != "muon"

    def ours(ps):
        return go.ALIASES[name](ps, **kw, **extra)

    def theirs(ps):
        return cls(ps, **kw)

    first, second = (theirs, ours) if direction == "torch->ours" else (ours, theirs)
    straight = _net(bias)
    opt = theirs(straight.parameters())
    _steps(straight, opt, 20)
    a = _net(bias)
    opt_a = first(a.parameters())
    _steps(a, opt_a, 10)
    b = _net(bias)
    b.load_state_dict(a.state_dict())
    opt_b = second(b.parameters())
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    assert set(opt_b.state[next(b.parameters())]) == set(opt_a.state[next(a.parameters())])
    _steps(b, opt_b, 10)
    assert (_flat(b) - _flat(straight)).abs().max().item() < 1e-9


def test_sparse_adam_state_dict_swaps_with_torch():
    def run(first, second):
        torch.manual_seed(0)
        emb = nn.Embedding(20, 3, sparse=True).to(F64)
        g = torch.Generator().manual_seed(1)
        idx = [torch.randint(0, 20, (6,), generator=g) for _ in range(4)]
        opt = first(emb.parameters())
        for i in range(20):
            if i == 10:
                sd = copy.deepcopy(opt.state_dict())
                opt = second(emb.parameters())
                opt.load_state_dict(sd)
            opt.zero_grad()
            emb(idx[i % 4]).tanh().sum().backward()
            opt.step()
        return emb.weight.detach()

    def ours(ps):
        return go.sparse_adam(ps, lr=0.05)

    def theirs(ps):
        return torch.optim.SparseAdam(ps, lr=0.05)

    ref = run(theirs, theirs)
    assert (run(theirs, ours) - ref).abs().max().item() < 1e-12
    assert (run(ours, theirs) - ref).abs().max().item() < 1e-12
    w = nn.Parameter(torch.zeros(3))
    w.grad = torch.ones(3)
    with pytest.raises(RuntimeError, match="sparse gradients"):
        go.sparse_adam([w]).step()
    with pytest.raises(RuntimeError, match="use gradwise.optim.sparse_adam"):
        emb = nn.Embedding(4, 2, sparse=True)
        opt = go.adam(emb.parameters())
        emb(torch.tensor([1])).sum().backward()
        opt.step()
