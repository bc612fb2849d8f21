"""Complex parameters (torch's view_as_real rule), ``maximize``, Tensor ``lr``, torch's state keys."""

from __future__ import annotations

import pytest
import torch

from gradwise import optim as go
from gradwise.errors import ConfigError
from gradwise.regularization import L1

# alias name -> (torch class, kwargs both take)
COMPLEX = {
    "sgd": (torch.optim.SGD, dict(lr=0.01, momentum=0.9, weight_decay=0.1)),
    "adam": (torch.optim.Adam, dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
    "adamw": (torch.optim.AdamW, dict(lr=0.05)),
    "rmsprop": (torch.optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
    "adagrad": (torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.01)),
    "nadam": (torch.optim.NAdam, dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    "radam": (torch.optim.RAdam, dict(lr=0.05, weight_decay=0.1)),
    "adamax": (torch.optim.Adamax, dict(lr=0.05, weight_decay=0.1)),
    "adadelta": (torch.optim.Adadelta, dict(lr=1.0, weight_decay=0.1)),
    "asgd": (torch.optim.ASGD, dict(lr=0.02, t0=10, weight_decay=0.1)),
    "rprop": (torch.optim.Rprop, dict(lr=0.01)),
}


def _loss(w):
    # Not holomorphic, so the real and imaginary gradients differ.
    k = torch.arange(w.numel(), dtype=w.real.dtype).reshape(w.shape)
    return (k * w.abs() ** 2 + (w * w).real + 3 * w.imag).sum()


def _complex_run(make, dtype, steps=30):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(3, 4, dtype=dtype))
    opt = make([w])
    for _ in range(steps):
        opt.zero_grad()
        _loss(w).backward()
        opt.step()
    return w.detach(), opt.state[w]


@pytest.mark.parametrize("name", sorted(COMPLEX))
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
def test_complex_parameters_follow_torch(name, dtype):
    cls, kw = COMPLEX[name]
    alias = go.ALIASES[name]
    ref, ref_state = _complex_run(lambda ps: cls(ps, **kw), dtype)
    ours, our_state = _complex_run(lambda ps: alias(ps, **kw, decay_mask="all"), dtype)
    tol = 1e-10 if dtype == torch.complex128 else 1e-5
    assert (ours - ref).abs().max().item() < tol
    assert set(our_state) == set(ref_state)
    for k, v in ref_state.items():
        assert our_state[k].dtype == v.dtype, k
    # The complex-square rule (u*u) would give a different point: the parts are independent.
    start, _ = _complex_run(lambda ps: cls(ps, **kw), dtype, steps=0)
    assert (ref - start).abs().max().item() > 1e-2


def test_issue_example_adam_moves_both_parts():
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.complex64))
    w.grad = torch.tensor([1 + 1j])
    go.adam([w], lr=0.1).step()
    assert torch.allclose(w.detach(), torch.tensor([-0.1 - 0.1j]))


def test_prox_refuses_complex_parameters():
    w = torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.complex64))
    with pytest.raises(ConfigError, match="complex"):
        go.adam([w], lr=0.1, prox=L1(0.1, mask="all"))


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_maximize_on_both_paths_is_minimizing_the_negated_loss(name, fused):
    # maximize f == minimize -f, step for step, on the fused and reference paths.
    def run(maximize):
        torch.manual_seed(0)
        w = torch.nn.Parameter(torch.randn(4, 3))
        opt = go.ALIASES[name]([w], lr=0.01, weight_decay=0.1, fused=fused, maximize=maximize)
        for _ in range(10):
            opt.zero_grad()
            loss = (w.sin() * torch.arange(3.0)).sum()
            (loss if maximize else -loss).backward()
            opt.step()
        return w.detach()

    assert torch.equal(run(True), run(False))


def test_tensor_lr_is_followed_by_a_scheduler():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5))
    b = torch.nn.Parameter(a.detach().clone())
    oa = torch.optim.SGD([a], lr=torch.tensor(0.1), momentum=0.9)
    ob = go.sgd([b], lr=torch.tensor(0.1), momentum=0.9)
    sa = torch.optim.lr_scheduler.StepLR(oa, 2, 0.5)
    sb = torch.optim.lr_scheduler.StepLR(ob, 2, 0.5)
    for _ in range(6):
        for w, o, s in ((a, oa, sa), (b, ob, sb)):
            o.zero_grad()
            (w**2).sum().backward()
            o.step()
            s.step()
    assert (a - b).abs().max().item() < 1e-6
    assert isinstance(ob.param_groups[0]["lr"], torch.Tensor)
    assert ob.param_groups[0]["lr"].item() == pytest.approx(0.0125)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(lr=torch.tensor([0.1, 0.2])), "one floating-point element"),
        (dict(lr=torch.tensor(-0.1)), "lr must be >= 0"),
        (dict(maximize="yes"), "maximize must be true or false"),
    ],
)
def test_bad_flags_name_the_option(kw, match):
    with pytest.raises(ConfigError, match=match):
        go.adam([torch.nn.Parameter(torch.zeros(2))], **kw)


@pytest.mark.parametrize("name, cls, kw", [
    ("adam", torch.optim.Adam, {}),
    ("rmsprop", torch.optim.RMSprop, dict(momentum=0.9, centered=True)),
    ("rmsprop", torch.optim.RMSprop, {}),
])
def test_state_keys_are_torchs(name, cls, kw):
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(3))
    oa, ob = cls([a], **kw), go.ALIASES[name]([b], **kw)
    a.grad = b.grad = torch.ones(3)
    oa.step()
    ob.step()
    assert set(ob.state[b]) == set(oa.state[a])


@pytest.mark.parametrize(
    "name, kw, match",
    [
        ("rprop", dict(etas=(1.2, 0.5)), "etas must satisfy 0 < etaminus < 1 < etaplus"),
        ("rprop", dict(step_sizes=(1.0, 0.1)), "step_sizes must be"),
        ("asgd", dict(lambd=-1), "asgd: lambd must be >= 0"),
        ("nadam", dict(momentum_decay=-1e-3), "momentum_decay must be >= 0"),
        ("radam", dict(betas=(0.9, 1.0)), r"betas\[1\] must be in"),
        ("adadelta", dict(rho=1.5), r"rho must be in \[0, 1\]"),
        ("nadam", dict(decoupled=False, decoupled_weight_decay=True), "contradicts"),
        ("asgd", dict(decoupled=True), "unexpected keyword"),
    ],
)
def test_new_aliases_name_the_bad_option(name, kw, match):
    with pytest.raises((ConfigError, TypeError), match=match):
        go.ALIASES[name]([torch.nn.Parameter(torch.zeros(2))], **kw)


@pytest.mark.parametrize("name", ["adafactor", "muon", "sparse_adam"])
def test_real_only_algorithms_refuse_complex_parameters(name):
    with pytest.raises(ConfigError, match=f"{name}: complex parameters are not supported"):
        go.ALIASES[name]([torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.complex64))])


@pytest.mark.parametrize(
    "name, kw, match",
    [
        ("muon", dict(adjust_lr_fn="nope"), "adjust_lr_fn must be None"),
        ("muon", dict(ns_steps=100), r"ns_steps must be an integer in \[0, 100\)"),
        ("adafactor", dict(beta2_decay=0.5), "beta2_decay must be <= 0"),
        ("adafactor", dict(d=0.5), "d must be >= 1"),
        ("adafactor", dict(eps=1e-3), "eps must be a pair"),
    ],
)
def test_matrix_aliases_name_the_bad_option(name, kw, match):
    with pytest.raises(ConfigError, match=match):
        go.ALIASES[name]([torch.nn.Parameter(torch.zeros(2, 2))], **kw)


def test_muon_refuses_vectors():
    with pytest.raises(ConfigError, match=r"muon: every parameter must be 2-D.*\(3,\)"):
        go.muon([torch.nn.Parameter(torch.zeros(3))])


# Every alias that takes complex parameters treats one as its real view: a
# complex w with loss f(w) moves exactly like the real tensor r = view_as_real(w)
# with loss f(view_as_complex(r)). (lbfgs: tests/optim/test_lbfgs.py.)
REAL_VIEW = {
    "sgd": dict(lr=0.01, momentum=0.9), "adam": dict(lr=0.05, amsgrad=True), "adamw": dict(lr=0.05),
    "rmsprop": dict(lr=0.01, centered=True), "adagrad": dict(lr=0.1), "nadam": dict(lr=0.05),
    "radam": dict(lr=0.05), "adamax": dict(lr=0.05), "adadelta": dict(), "asgd": dict(lr=0.02),
    "rprop": dict(lr=0.01), "lion": dict(lr=0.01, weight_decay=0.1), "lamb": dict(lr=0.05),
    "lars": dict(lr=0.5, trust_coefficient=0.02), "schedule_free_adamw": dict(lr=0.05),
    "schedule_free_sgd": dict(lr=0.05),
}


def _view_run(make, complex_param, steps=15):
    torch.manual_seed(0)
    w0 = torch.randn(3, 4, dtype=torch.complex128)
    if complex_param:
        w = torch.nn.Parameter(w0.clone())
        opt = make([w])

        def as_c():
            return w
    else:
        w = torch.nn.Parameter(torch.view_as_real(w0).clone())
        opt = make([w])

        def as_c():
            return torch.view_as_complex(w)
    for _ in range(steps):
        def closure():
            opt.zero_grad()
            loss = _loss(as_c())
            loss.backward()
            return loss
        closure()
        opt.step(closure) if isinstance(opt, go.SAM) else opt.step()
    return torch.view_as_real(w.detach()) if complex_param else w.detach()


@pytest.mark.parametrize("name", sorted(REAL_VIEW) + ["SAM"])
def test_complex_parameter_moves_as_its_real_view(name):
    if name == "SAM":
        def make(ps):
            return go.SAM(go.sgd(ps, lr=0.01), rho=0.1, adaptive=True)
    else:
        def make(ps):
            return go.ALIASES[name](ps, **REAL_VIEW[name], decay_mask="all")
    ours = _view_run(make, True)
    real = _view_run(make, False)
    assert (ours - real).abs().max().item() < 1e-12
    assert (real - _view_run(make, False, steps=0)).abs().max().item() > 1e-3
