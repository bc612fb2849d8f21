"""The Optimizer adapter: groups, closures, state_dict, masks, errors."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from gradwise import optim as go
from gradwise.errors import ConfigError
from gradwise.regularization import L1

F64 = torch.float64


def _loss(net, X, y):
    return nn.functional.mse_loss(net(X), y)


def _steps(net, opt, X, y, n):
    for _ in range(n):
        opt.zero_grad()
        _loss(net, X, y).backward()
        opt.step()


def _flat(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


RESUMABLE = {
    "adam-fused": lambda ps: go.adamw(ps, lr=1e-2, amsgrad=True),
    "adam-reference": lambda ps: go.adamw(ps, lr=1e-2, amsgrad=True, fused=False),
    "sgd-fused": lambda ps: go.sgd(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd-reference": lambda ps: go.sgd(ps, lr=0.05, momentum=0.9, nesterov=True, fused=False),
    "rmsprop": lambda ps: go.rmsprop(ps, lr=1e-3, centered=True, momentum=0.5, weight_decay=0.1),
    "adagrad": lambda ps: go.adagrad(ps, lr=0.05, lr_decay=0.01),
    "adam-prox": lambda ps: go.adam(ps, lr=1e-2, prox=L1(1e-2)),
}


@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_state_dict_resume_is_bit_identical(name, problem):
    X, y, model = problem
    make = RESUMABLE[name]
    straight = model()
    opt = make(straight.named_parameters())
    _steps(straight, opt, X, y, 100)

    first = model()
    opt = make(first.named_parameters())
    _steps(first, opt, X, y, 50)
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)

    resumed = model()
    resumed.load_state_dict(saved["model"])
    opt2 = make(resumed.named_parameters())
    opt2.load_state_dict(saved["opt"])
    _steps(resumed, opt2, X, y, 50)
    assert torch.equal(_flat(resumed), _flat(straight))


def test_state_uses_torch_keys_and_loads_a_torch_adam_checkpoint(problem):
    X, y, model = problem
    ref = model().to(F64)
    X, y = X.to(F64), y.to(F64)
    t_opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    _steps(ref, t_opt, X, y, 20)
    ours = model().to(F64)
    ours.load_state_dict(ref.state_dict())
    opt = go.adam(ours.parameters(), lr=1e-2, fused=False)
    # torch's load_state_dict shares tensors with the dict it loads: copy it.
    opt.load_state_dict(copy.deepcopy(t_opt.state_dict()))
    _steps(ref, t_opt, X, y, 20)
    _steps(ours, opt, X, y, 20)
    assert torch.allclose(_flat(ours), _flat(ref), atol=1e-12, rtol=0)
    state = opt.state[next(ours.parameters())]
    assert {"step", "exp_avg", "exp_avg_sq"} <= set(state)
    assert state["step"].item() == 40


def test_param_groups_with_own_options_equal_torch(problem):
    X, y, model = problem
    X, y = X.to(F64), y.to(F64)
    nets = [model().to(F64) for _ in range(3)]

    def groups(net):
        return [
            {"params": net[0].parameters(), "lr": 0.1, "weight_decay": 0.05},
            {"params": net[2].parameters(), "momentum": 0.5},
        ]

    t_opt = torch.optim.SGD(groups(nets[0]), lr=0.01, momentum=0.9)
    ours = [go.sgd(groups(n), lr=0.01, momentum=0.9, decay_mask="all", fused=f)
            for n, f in zip(nets[1:], (False, True))]
    _steps(nets[0], t_opt, X, y, 30)
    for net, opt in zip(nets[1:], ours):
        _steps(net, opt, X, y, 30)
        assert torch.allclose(_flat(net), _flat(nets[0]), atol=1e-12, rtol=0)
    assert ours[0].param_groups[1]["weight_decay"] == 0.0
    assert ours[0].param_groups[0]["lr"] == 0.1


def test_closure_is_evaluated_with_grad_and_its_loss_returned(problem):
    X, y, model = problem
    a, b = model(), model()
    t_opt = torch.optim.SGD(a.parameters(), lr=0.1)
    opt = go.sgd(b.parameters(), lr=0.1)
    for net, o in ((a, t_opt), (b, opt)):
        def closure(net=net, o=o):
            o.zero_grad()
            loss = _loss(net, X, y)
            loss.backward()
            return loss

        first = o.step(closure)
        assert torch.is_tensor(first) and first.item() > 0
    assert torch.allclose(_flat(a), _flat(b), atol=1e-7)


def test_zero_grad_sets_grads_to_none(problem):
    X, y, model = problem
    net = model()
    opt = go.adam(net.parameters())
    _loss(net, X, y).backward()
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_params_without_grad_are_left_alone(problem):
    X, y, model = problem
    net = model()
    net[0].weight.requires_grad_(False)
    before = net[0].weight.clone()
    opt = go.adamw(net.parameters(), lr=0.1)
    _steps(net, opt, X, y, 3)
    assert torch.equal(net[0].weight, before)
    assert net[0].weight not in opt.state


def test_name_pattern_masks_need_named_parameters(problem):
    _, _, model = problem
    net = model()
    with pytest.raises(ConfigError, match="named_parameters"):
        go.adamw(net.parameters(), decay_mask=["0.*"])
    opt = go.adamw(net.named_parameters(), decay_mask=["0.*"])
    plans = opt.plan(opt.param_groups[0])
    decay_index = 2  # scale_by_adam, add_decayed_weights, scale_by_lr
    assert [pl.active[decay_index - 1] for pl in plans] == [True, True, False, False]


@pytest.mark.parametrize("fused", [False, True])
def test_callable_and_pattern_masks_select_decay(problem, fused):
    X, y, model = problem
    X, y = X.to(F64), y.to(F64)
    ref, a, b = (model().to(F64) for _ in range(3))
    t_opt = torch.optim.AdamW(
        [{"params": [ref[0].weight]}, {"params": [ref[0].bias, *ref[2].parameters()], "weight_decay": 0.0}],
        lr=1e-2, weight_decay=0.5,
    )
    o1 = go.adamw(a.named_parameters(), lr=1e-2, weight_decay=0.5, decay_mask="0.weight", fused=fused)
    o2 = go.adamw(b.parameters(), lr=1e-2, weight_decay=0.5, fused=fused,
                  decay_mask=lambda name, p: p.shape == (16, 5))
    for net, o in ((ref, t_opt), (a, o1), (b, o2)):
        _steps(net, o, X, y, 20)
    assert torch.allclose(_flat(a), _flat(ref), atol=1e-12, rtol=0)
    assert torch.allclose(_flat(b), _flat(ref), atol=1e-12, rtol=0)


def test_clip_by_global_norm_equals_torch_clip_grad_norm(problem):
    X, y, model = problem
    X, y = X.to(F64), y.to(F64)
    ref, ours = model().to(F64), model().to(F64)
    t_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    opt = go.Optimizer(
        ref_params := list(ours.parameters()),
        go.chain(go.clip_by_global_norm(0.05), go.scale_by_momentum(0.9), go.scale_by_lr(0.1)),
    )
    assert ref_params
    for _ in range(20):
        for net, o in ((ref, t_opt), (ours, opt)):
            o.zero_grad()
            _loss(net, X, y).backward()
            if o is t_opt:
                nn.utils.clip_grad_norm_(net.parameters(), 0.05)
            o.step()
    assert torch.allclose(_flat(ours), _flat(ref), atol=1e-12, rtol=0)


def test_group_options_follow_transform_fields_and_override_them():
    w = nn.Parameter(torch.ones(2, 2))
    opt = go.Optimizer([w], go.chain(go.scale_by_adam(betas=(0.8, 0.9)), go.scale_by_lr(0.5)))
    assert opt.defaults["betas"] == (0.8, 0.9) and opt.defaults["lr"] == 0.5
    opt = go.Optimizer([w], go.chain(go.scale_by_adam(), go.scale_by_lr(0.5)), lr=0.25)
    w.grad = torch.ones(2, 2)
    opt.step()
    # Adam's first step is lr * sign(g) (to eps): 1 - 0.25.
    assert torch.allclose(w, torch.full((2, 2), 0.75))


def test_chain_errors_are_clear():
    w = nn.Parameter(torch.ones(2, 2))
    with pytest.raises(ConfigError, match="last transform"):
        go.Optimizer([w], go.chain(go.prox(L1(0.1)), go.scale_by_lr(0.1)))
    with pytest.raises(ConfigError, match="weight_decay"):
        go.Optimizer([w], go.chain(go.add_l2(0.1), go.scale_by_adam(), go.add_decayed_weights(0.2),
                                   go.scale_by_lr(0.1)))
    with pytest.raises(ConfigError, match="fused=True"):
        go.Optimizer([w], go.chain(go.scale_by_rms(), go.scale_by_lr(0.1)), fused=True)
    with pytest.raises(ConfigError, match="step size"):
        go.Optimizer([w], go.chain(go.scale_by_adam(), go.prox(L1(0.1))))
    with pytest.raises(TypeError, match="penalty"):
        go.prox(0.1)


def test_mixed_dtypes_fall_back_to_reference_path():
    a = nn.Parameter(torch.ones(3, 3))
    b = nn.Parameter(torch.ones(3, 3, dtype=F64))
    opt = go.sgd([a, b], lr=0.1, momentum=0.9)
    for _ in range(2):
        a.grad, b.grad = torch.ones(3, 3), torch.ones(3, 3, dtype=F64)
        opt.step()
    # b_1 = g, b_2 = 0.9 g + g: w = 1 - 0.1 - 0.19
    assert torch.allclose(a, torch.full((3, 3), 0.71))
    assert torch.allclose(b, torch.full((3, 3), 0.71, dtype=F64))


@pytest.mark.parametrize("fused", [False, True])
def test_deepcopy_and_pickle_keep_the_chain(problem, fused):
    import pickle

    X, y, model = problem
    net = model()
    opt = go.adamw(net.parameters(), lr=1e-2, prox=L1(1e-3), fused=fused)
    _steps(net, opt, X, y, 3)
    twin_net = copy.deepcopy(net)
    twin = copy.deepcopy(opt)
    # the copy's state refers to the copied model's parameters
    twin.param_groups[0]["params"] = list(twin_net.parameters())
    twin.state = type(twin.state)(dict, {q: copy.deepcopy(opt.state[p])
                                         for p, q in zip(net.parameters(), twin_net.parameters())})
    _steps(net, opt, X, y, 3)
    _steps(twin_net, twin, X, y, 3)
    assert torch.equal(_flat(net), _flat(twin_net))
    restored = pickle.loads(pickle.dumps(opt))
    assert [repr(t) for t in restored.leaves] == [repr(t) for t in opt.leaves]
    assert restored.prox.penalty.lam == 1e-3
