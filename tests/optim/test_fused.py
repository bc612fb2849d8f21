"""The fused path (torch's multi-tensor kernels) equals the per-tensor reference path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradwise import optim as go
from gradwise.regularization import L1, ElasticNet

F64 = torch.float64

CONFIGS = {
    "sgd": lambda ps, f: go.sgd(ps, lr=0.05, fused=f),
    "sgd-momentum-wd-auto": lambda ps, f: go.sgd(ps, lr=0.05, momentum=0.9, weight_decay=0.1, fused=f),
    "sgd-nesterov": lambda ps, f: go.sgd(ps, lr=0.05, momentum=0.9, nesterov=True, fused=f),
    "sgd-dampening": lambda ps, f: go.sgd(ps, lr=0.05, momentum=0.8, dampening=0.5, fused=f),
    "sgdw": lambda ps, f: go.sgd(ps, lr=0.05, momentum=0.9, weight_decay=0.2, decoupled=True, fused=f),
    "sgdw-all": lambda ps, f: go.sgd(ps, lr=0.05, weight_decay=0.2, decoupled=True, decay_mask="all",
                                     fused=f),
    "sgd-prox-enet": lambda ps, f: go.sgd(ps, lr=0.05, momentum=0.9, prox=ElasticNet(0.05, 0.5), fused=f),
    "adam": lambda ps, f: go.adam(ps, lr=1e-2, fused=f),
    "adam-l2-auto": lambda ps, f: go.adam(ps, lr=1e-2, weight_decay=0.1, fused=f),
    "adam-amsgrad": lambda ps, f: go.adam(ps, lr=1e-2, amsgrad=True, fused=f),
    "adamw-auto": lambda ps, f: go.adamw(ps, lr=1e-2, weight_decay=0.3, fused=f),
    "adamw-all": lambda ps, f: go.adamw(ps, lr=1e-2, weight_decay=0.3, decay_mask="all", fused=f),
    "adamw-prox-l1": lambda ps, f: go.adamw(ps, lr=1e-2, prox=L1(0.05), fused=f),
    "adagrad": lambda ps, f: go.adagrad(ps, lr=0.05, fused=f),
    "adagrad-all": lambda ps, f: go.adagrad(ps, lr=0.05, lr_decay=0.01, weight_decay=0.1,
                                            initial_accumulator_value=0.1, fused=f),
    "adagrad-decoupled-prox": lambda ps, f: go.adagrad(ps, lr=0.05, weight_decay=0.1, decoupled=True,
                                                       prox=L1(0.01), maximize=True, fused=f),
    "adamw-lookahead": lambda ps, f: go.Optimizer(
        ps, go.chain(*go.adamw([torch.zeros(1)], weight_decay=0.1).leaves, go.lookahead(3, 0.6)), fused=f),
    "sgd-lookahead-prox": lambda ps, f: go.Optimizer(
        ps, go.chain(*go.sgd([torch.zeros(1)], momentum=0.9).leaves, go.lookahead(4, 0.5),
                     go.prox(L1(0.01))), fused=f, lr=0.05),
    "adamw-prox-factor": lambda ps, f: go.adamw(
        ps, lr=1e-2, prox=L1(0.05, factor={"0.*": 2.0, "2.*": 0.0}), fused=f
    ),
}


def _run(problem, make, fused, dtype, steps=40, groups=False, device="cpu"):
    X, y, model = problem
    X, y = X.to(device, dtype), y.to(device, dtype)
    net = model().to(device, dtype)
    if groups:
        named = list(net.named_parameters())
        params = [{"params": named[:2], "lr": 0.02}, {"params": named[2:]}]
    else:
        params = net.named_parameters()
    opt = make(params, fused)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(net(X), y).backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()]), opt


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fused_equals_reference(name, problem, monkeypatch):
    calls = []
    for kernel in ("_fused_sgd_", "_fused_adam_", "_fused_adamw_", "_fused_adagrad_"):
        original = getattr(torch, kernel)
        monkeypatch.setattr(torch, kernel, lambda *a, _k=original, **kw: (calls.append(1), _k(*a, **kw)))
    make = CONFIGS[name]
    ref64, _ = _run(problem, make, False, F64)
    assert not calls
    fused64, _ = _run(problem, make, True, F64, groups=False)
    assert calls, "the dispatcher did not take the fused path"
    assert (fused64 - ref64).abs().max().item() < 1e-12
    ref32, _ = _run(problem, make, False, torch.float32, steps=20)
    fused32, _ = _run(problem, make, None, torch.float32, steps=20)
    assert (fused32 - ref32).abs().max().item() < 2e-6
    if "prox" in name:
        assert torch.equal(fused32 == 0, ref32 == 0)


@pytest.mark.parametrize("name", ["sgd-momentum-wd-auto", "adamw-auto"])
def test_fused_equals_reference_with_param_groups(name, problem):
    ref, _ = _run(problem, CONFIGS[name], False, F64, groups=True)
    fused, _ = _run(problem, CONFIGS[name], True, F64, groups=True)
    assert (fused - ref).abs().max().item() < 1e-12


def test_momentum_buffers_born_at_different_steps(problem):
    # The first layer gets gradients only from step 3 on: its buffers start
    # later than the others', which one fused call cannot mix.
    X, y, model = problem
    out = []
    for fused in (False, None):
        net = model().to(F64)
        opt = go.sgd(net.parameters(), lr=0.05, momentum=0.9, dampening=0.5, fused=fused)
        for step in range(6):
            opt.zero_grad()
            nn.functional.mse_loss(net(X.to(F64)), y.to(F64)).backward()
            if step < 3:
                net[0].weight.grad = None
            opt.step()
        out.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert (out[0] - out[1]).abs().max().item() < 1e-12


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["sgd-momentum-wd-auto", "sgdw", "adam-amsgrad", "adamw-auto", "adamw-prox-l1"])
def test_fused_equals_reference_on_cuda(name, problem):
    ref, _ = _run(problem, CONFIGS[name], False, F64, device="cuda")
    fused, opt = _run(problem, CONFIGS[name], True, F64, device="cuda")
    assert (fused - ref).abs().max().item() < 1e-12
    cpu, _ = _run(problem, CONFIGS[name], False, F64)
    assert (fused.cpu() - cpu).abs().max().item() < 1e-9


def test_step_counters_advance_only_for_params_with_grads():
    out = []
    for fused in (False, True):
        ps = [nn.Parameter(torch.full((2, 2), float(k + 1), dtype=F64)) for k in range(3)]
        opt = go.adam(ps, lr=0.1, fused=fused)
        for i in range(5):
            for j, p in enumerate(ps):
                p.grad = p.detach() ** 2 if (j != 1 or i >= 2) and (j != 2 or i != 3) else None
            opt.step()
        assert [opt.state[p]["step"].item() for p in ps] == [5, 3, 4]
        out.append(torch.stack([p.detach() for p in ps]))
    assert (out[0] - out[1]).abs().max().item() < 1e-12


class _Wide(nn.Module):
    """Many small layers and one large one: the prox runs in several segments."""

    def __init__(self, dtype):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        sizes = [(9, 7)] * 30 + [(400, 400)] + [(60, 50)] * 50 + [(3,)] * 5
        self.ws = nn.ParameterList(nn.Parameter(0.02 * torch.randn(s, generator=g, dtype=dtype)) for s in sizes)
        self.norm = nn.LayerNorm(7).to(dtype)  # 'auto' masks leave it out of decay and prox


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("shrink_backend", ["numba", "torch"])
def test_fused_prox_l1_equals_torch_fused_adamw_then_softshrink(dtype, amsgrad, shrink_backend, monkeypatch):
    # The prox runs segment by segment, interleaved with the kernel and, for
    # the small tensors, in one numba call per segment; the weights must be
    # bit for bit those of torch's fused AdamW followed by softshrink.
    from gradwise.regularization import _shrink

    if shrink_backend == "numba" and not _shrink.has_numba():
        pytest.skip("numba (the fast extra) is not installed")
    monkeypatch.setattr(_shrink, "_use_numba", [shrink_backend == "numba"])
    ours, ref = _Wide(dtype), _Wide(dtype)
    lam, factor = 1.0, {"ws.3*": 2.0, "ws.5": 0.0}
    opt = go.adamw(ours.named_parameters(), lr=1e-2, weight_decay=0.1, amsgrad=amsgrad,
                   prox=L1(lam, factor=factor), fused=True)
    named = list(ref.named_parameters())
    auto = [p for _, p in named if p.dim() >= 2]  # what mask='auto' selects, for decay and prox
    torch_opt = torch.optim.AdamW(
        [{"params": auto}, {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0}],
        lr=1e-2, weight_decay=0.1, amsgrad=amsgrad, fused=True,
    )
    g = torch.Generator().manual_seed(1)
    for step in range(4):
        lr = 1e-2 / (step + 1)  # a schedule: the threshold moves
        for grp in (*opt.param_groups, *torch_opt.param_groups):
            grp["lr"] = lr
        for p, q in zip(ours.parameters(), ref.parameters()):
            p.grad = torch.randn(p.shape, generator=g, dtype=dtype)
            q.grad = p.grad.clone()
        opt.step()
        torch_opt.step()
        with torch.no_grad():
            for n, q in named:
                if q.dim() >= 2:
                    f = 2.0 if n.startswith("ws.3") else 0.0 if n == "ws.5" else 1.0
                    torch.nn.functional.softshrink(q, lr * lam * f, out=q)
    for p, q in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(p, q)
    cache = next(iter(opt._fast_cache.values()))
    segs = next(iter(cache.segments.values()))
    assert len(segs) > 3 and any(len(s.idx) == 1 and s.lists[0][0].numel() == 160000 for s in segs)
    assert (ours.ws[40] == 0).float().mean() > 0.1
