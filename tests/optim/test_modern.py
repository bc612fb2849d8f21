"""Lion, LAMB, LARS, Schedule-Free AdamW/SGD, Lookahead and SAM against their reference packages.

float64 trajectories of 60 steps on a small MLP must agree to 1e-9; the
references are used in tests only (the dev extra).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gradwise import optim as go
from gradwise.errors import ConfigError
from gradwise.regularization import L1

F64 = torch.float64
STEPS = 60


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 5, generator=g, dtype=F64), torch.randn(64, 1, generator=g, dtype=F64)


def _net():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1)).to(F64)


def _flat(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def _train(make, steps=STEPS, closure_step=False, before=None, after=None):
    X, y = _data()
    net = _net()
    opt = make(net)
    if before:
        before(opt)

    def closure():
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(X), y)
        loss.backward()
        return loss

    for _ in range(steps):
        closure()
        opt.step(closure) if closure_step else opt.step()
    if after:
        after(opt)
    return _flat(net), opt


def _close(make_ref, make_ours, tol=1e-9, **kw):
    ref, _ = _train(make_ref, **kw)
    ours, _ = _train(make_ours, **kw)
    start = _flat(_net())
    assert (ref - start).abs().max().item() > 1e-3  # it moved
    err = (ours - ref).abs().max().item()
    assert err < tol, f"max |diff| {err:.3g}"


@pytest.mark.parametrize("wd", [0.0, 0.5])
def test_lion_equals_lion_pytorch(wd):
    lion_pytorch = pytest.importorskip("lion_pytorch")
    _close(lambda m: lion_pytorch.Lion(m.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=wd),
           lambda m: go.lion(m.parameters(), lr=3e-3, weight_decay=wd, decay_mask="all"))


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_lamb_equals_pytorch_optimizer(wd):
    po = pytest.importorskip("pytorch_optimizer")
    _close(lambda m: po.Lamb(m.parameters(), lr=1e-2, weight_decay=wd),
           lambda m: go.lamb(m.parameters(), lr=1e-2, weight_decay=wd))


@pytest.mark.parametrize("nesterov", [False, True])
def test_lars_equals_pytorch_optimizer(nesterov):
    po = pytest.importorskip("pytorch_optimizer")
    kw = dict(lr=0.5, weight_decay=1e-2, momentum=0.9, trust_coefficient=0.02, nesterov=nesterov)
    _close(lambda m: po.LARS(m.parameters(), **kw), lambda m: go.lars(m.parameters(), **kw))


@pytest.mark.parametrize("kw", [dict(lr=5e-3), dict(lr=5e-3, weight_decay=0.1, warmup_steps=10, r=0.5)])
def test_schedule_free_adamw_equals_schedulefree_in_train_and_eval(kw):
    sf = pytest.importorskip("schedulefree")
    train = dict(before=lambda o: o.train())
    _close(lambda m: sf.AdamWScheduleFree(m.parameters(), foreach=False, **kw),
           lambda m: go.schedule_free_adamw(m.parameters(), **kw), **train)
    # eval() puts the average x in: equal too; train() brings y back.
    _close(lambda m: sf.AdamWScheduleFree(m.parameters(), foreach=False, **kw),
           lambda m: go.schedule_free_adamw(m.parameters(), **kw), after=lambda o: o.eval(), **train)


def test_schedule_free_sgd_equals_schedulefree_and_eval_swaps_weights():
    sf = pytest.importorskip("schedulefree")
    kw = dict(lr=0.2, momentum=0.9, weight_decay=0.01, warmup_steps=5)
    _close(lambda m: sf.SGDScheduleFree(m.parameters(), foreach=False, **kw),
           lambda m: go.schedule_free_sgd(m.parameters(), **kw), before=lambda o: o.train(),
           after=lambda o: o.eval())
    y, opt = _train(lambda m: go.schedule_free_sgd(m.parameters(), **kw))
    opt.eval()
    x = torch.cat([p.detach().flatten() for g in opt.param_groups for p in g["params"]])
    assert (x - y).abs().max().item() > 1e-4  # x is not y
    with pytest.raises(RuntimeError, match="call opt.train"):
        opt.step()
    opt.train()
    back = torch.cat([p.detach().flatten() for g in opt.param_groups for p in g["params"]])
    assert (back - y).abs().max().item() < 1e-12


@pytest.mark.parametrize("k, alpha", [(5, 0.5), (3, 0.8)])
def test_lookahead_around_adamw_equals_pytorch_optimizer(k, alpha):
    po = pytest.importorskip("pytorch_optimizer")

    def ours(m):
        inner = go.adamw(m.parameters(), lr=1e-2, weight_decay=0.1, decay_mask="all")
        return go.Optimizer(m.parameters(), go.chain(*inner.leaves, go.lookahead(k, alpha)))

    _close(lambda m: po.Lookahead(torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1),
                                  k=k, alpha=alpha), ours)


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_around_sgd_equals_pytorch_optimizer(adaptive):
    # pytorch-optimizer rounds the perturbation's norm to float32 (even for
    # float64 weights); gradwise keeps the weights' precision, so float64
    # trajectories agree to float32 rounding of that one scalar per step.
    po = pytest.importorskip("pytorch_optimizer")
    rho = 0.5 if adaptive else 0.05
    _close(lambda m: po.SAM(m.parameters(), torch.optim.SGD, rho=rho, adaptive=adaptive, lr=0.1,
                            momentum=0.9, foreach=False),
           lambda m: go.SAM(go.sgd(m.parameters(), lr=0.1, momentum=0.9), rho=rho, adaptive=adaptive),
           closure_step=True, tol=1e-5)


def test_sam_step_is_the_gradient_at_the_perturbed_point():
    # f(w) = sum(w^4): g = 4 w^3, e = rho g / ||g||, step uses 4 (w + e)^3.
    w0 = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    w = nn.Parameter(w0.clone())
    opt = go.SAM(go.sgd([w], lr=0.01), rho=0.1)

    def closure():
        opt.zero_grad()
        loss = (w**4).sum()
        loss.backward()
        return loss

    closure()
    opt.step(closure)
    g = 4 * w0**3
    e = 0.1 * g / g.norm()
    assert torch.allclose(w.detach(), w0 - 0.01 * 4 * (w0 + e) ** 3, rtol=1e-12)


def test_modern_chains_compose_with_prox_and_masks():
    # prox=L1 gives exact zeros under lion; decay_mask="auto" leaves biases undecayed.
    X, y = _data()
    net = _net()
    opt = go.lion(net.named_parameters(), lr=1e-2, weight_decay=0.5, prox=L1(2.0))
    for _ in range(100):
        opt.zero_grad()
        nn.functional.mse_loss(net(X), y).backward()
        opt.step()
    w = net[0].weight.detach()
    assert (w == 0).float().mean().item() > 0.3
    mask = [t for t in opt.leaves if isinstance(t, go._decay.AddDecayedWeights)][0].mask
    assert mask == "auto"


@pytest.mark.parametrize("fused", [None, False])
def test_lookahead_state_resumes_bit_identically(fused):
    X, y = _data()

    def make(m):
        leaves = go.adam([torch.zeros(1)], lr=1e-2).leaves
        return go.Optimizer(m.parameters(), go.chain(*leaves, go.lookahead(3, 0.5)), fused=fused)

    def steps(net, opt, n):
        for _ in range(n):
            opt.zero_grad()
            nn.functional.mse_loss(net(X), y).backward()
            opt.step()

    straight = _net()
    steps(straight, make(straight), 10)
    first = _net()
    opt = make(first)
    steps(first, opt, 5)  # the slow weights were last synced at step 3
    sd = copy.deepcopy(opt.state_dict())
    assert "slow_params" in next(iter(sd["state"].values()))
    resumed = _net()
    resumed.load_state_dict(first.state_dict())
    opt2 = make(resumed)
    opt2.load_state_dict(sd)
    steps(resumed, opt2, 5)
    assert torch.equal(_flat(resumed), _flat(straight))


@pytest.mark.parametrize("call, match", [
    (lambda: go.lookahead(k=0), "k must be an integer >= 1"),
    (lambda: go.lookahead(alpha=1.5), r"alpha must be in \[0, 1\]"),
    (lambda: go.schedule_free(momentum=0.0), r"momentum must be in \(0, 1\)"),
    (lambda: go.SAM(object()), "SAM wraps a torch.optim.Optimizer"),
    (lambda: go.lion([nn.Parameter(torch.zeros(2))], betas=(0.9, 1.2)), r"betas\[1\] must be in"),
])
def test_bad_values_name_the_option(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


def test_schedule_free_resumes_through_a_weights_only_checkpoint():
    import io

    X, y = _data()

    def steps(net, opt, n):
        for _ in range(n):
            opt.zero_grad()
            nn.functional.mse_loss(net(X), y).backward()
            opt.step()

    def make(m):
        return go.schedule_free_adamw(m.parameters(), lr=5e-3, warmup_steps=4, weight_decay=0.1)

    straight = _net()
    steps(straight, make(straight), 12)
    first = _net()
    opt = make(first)
    steps(first, opt, 6)
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    resumed = _net()
    resumed.load_state_dict(saved["model"])
    opt2 = make(resumed)
    opt2.load_state_dict(saved["opt"])
    steps(resumed, opt2, 6)
    assert torch.equal(_flat(resumed), _flat(straight))
