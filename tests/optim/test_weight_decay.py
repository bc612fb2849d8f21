"""One weight-decay API: coupled L2 vs decoupled decay, SGDW, masks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradwise import optim as go


def _one_step(opt_fn, w0, g):
    w = nn.Parameter(w0.clone())
    opt = opt_fn([w])
    w.grad = g.clone()
    opt.step()
    return w.detach()


def test_adam_decoupled_is_adamw():
    a = go.adam([nn.Parameter(torch.ones(2, 2))], lr=0.1, weight_decay=0.2, decoupled=True)
    b = go.adamw([nn.Parameter(torch.ones(2, 2))], lr=0.1, weight_decay=0.2)
    assert a.leaves == b.leaves
    assert a.defaults == b.defaults


def test_sgdw_follows_its_formula():
    lr, wd, mu = 0.1, 0.5, 0.9
    w0 = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    g1 = torch.tensor([[0.3, 0.1]], dtype=torch.float64)
    g2 = torch.tensor([[-0.2, 0.4]], dtype=torch.float64)
    for fused in (False, True):
        w = nn.Parameter(w0.clone())
        opt = go.sgd([w], lr=lr, momentum=mu, weight_decay=wd, decoupled=True, fused=fused)
        w.grad = g1.clone()
        opt.step()
        w.grad = g2.clone()
        opt.step()
        # w <- w - lr * b - lr * wd * w, the decay outside the momentum buffer
        b1 = g1
        w1 = w0 - lr * b1 - lr * wd * w0
        b2 = mu * b1 + g2
        w2 = w1 - lr * b2 - lr * wd * w1
        assert torch.allclose(w.detach(), w2, atol=1e-15, rtol=0)


def test_coupled_and_decoupled_agree_for_plain_sgd_and_differ_for_adam():
    w0 = torch.tensor([[1.0, -3.0, 0.5]], dtype=torch.float64)
    g = torch.tensor([[0.2, 0.0, -1.0]], dtype=torch.float64)
    kw = dict(lr=0.1, weight_decay=0.5)
    c = _one_step(lambda ps: go.sgd(ps, **kw, decoupled=False), w0, g)
    d = _one_step(lambda ps: go.sgd(ps, **kw, decoupled=True), w0, g)
    assert torch.allclose(c, d, atol=1e-15, rtol=0)

    zero = torch.zeros_like(w0)
    c = _one_step(lambda ps: go.adam(ps, **kw, decoupled=False), w0, zero)
    d = _one_step(lambda ps: go.adam(ps, **kw, decoupled=True), w0, zero)
    # Coupled: the decay term wd * w is normalized by Adam like a gradient,
    # so the first step is lr * sign(w) whatever wd is. Decoupled: lr * wd * w.
    assert torch.allclose(w0 - c, 0.1 * torch.sign(w0), atol=1e-8, rtol=0)
    assert torch.allclose(w0 - d, 0.1 * 0.5 * w0, atol=1e-15, rtol=0)


@pytest.mark.parametrize("alias", [go.sgd, go.adam, go.adamw, go.rmsprop, go.adagrad])
@pytest.mark.parametrize("decoupled", [False, True])
def test_auto_mask_spares_biases_and_norm_weights(alias, decoupled):
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = alias(net.parameters(), weight_decay=0.5, decoupled=decoupled)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in net.named_parameters():
        moved = not torch.equal(p.detach(), before[name])
        assert moved == (name == "0.weight"), name


def test_group_may_set_its_own_weight_decay_when_default_is_zero():
    w, v = nn.Parameter(torch.ones(2, 2)), nn.Parameter(torch.ones(2, 2))
    opt = go.sgd([{"params": [w], "weight_decay": 0.5}, {"params": [v]}], lr=0.1)
    w.grad, v.grad = torch.zeros(2, 2), torch.zeros(2, 2)
    opt.step()
    assert torch.allclose(w, torch.full((2, 2), 0.95)) and torch.equal(v, torch.ones(2, 2))
