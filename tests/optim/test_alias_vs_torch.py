"""Aliases follow torch.optim's trajectories: 200 steps on a small MLP.

In float64 round-off is out of the picture, so the trajectories must agree
to ~1e-10: that checks the algorithm, flag by flag. In float32 they must
agree to round-off, measured as how far torch's own trajectory moves when
every initial weight moves by one ulp (RMSprop's first steps, for example,
are sign-like and amplify round-off in torch itself).
"""

from __future__ import annotations

import pytest
import torch

from gradwise import optim as go

# (torch class, torch kwargs, our alias, extra kwargs of ours)
CASES = {
    "sgd": (torch.optim.SGD, dict(lr=0.05), go.sgd, {}),
    "sgd-momentum": (torch.optim.SGD, dict(lr=0.05, momentum=0.9), go.sgd, {}),
    "sgd-nesterov": (torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True), go.sgd, {}),
    "sgd-dampening": (torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3), go.sgd, {}),
    "sgd-wd": (torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.05), go.sgd, {}),
    "adam": (torch.optim.Adam, dict(lr=1e-3), go.adam, {}),
    "adam-amsgrad": (torch.optim.Adam, dict(lr=3e-3, amsgrad=True), go.adam, {}),
    "adam-wd": (torch.optim.Adam, dict(lr=1e-3, weight_decay=0.1), go.adam, {}),
    "adamw": (torch.optim.AdamW, dict(lr=1e-3), go.adamw, {}),
    "adamw-amsgrad-wd": (torch.optim.AdamW, dict(lr=3e-3, amsgrad=True, weight_decay=0.1), go.adamw, {}),
    "adam-decoupled": (torch.optim.AdamW, dict(lr=1e-3, weight_decay=0.1), go.adam, dict(decoupled=True)),
    "rmsprop": (torch.optim.RMSprop, dict(lr=1e-3), go.rmsprop, {}),
    "rmsprop-centered": (torch.optim.RMSprop, dict(lr=1e-3, centered=True), go.rmsprop, {}),
    "rmsprop-momentum-wd": (
        torch.optim.RMSprop, dict(lr=1e-3, momentum=0.9, weight_decay=0.05), go.rmsprop, {}
    ),
    "adagrad": (torch.optim.Adagrad, dict(lr=0.05), go.adagrad, {}),
    "adagrad-all": (
        torch.optim.Adagrad,
        dict(lr=0.05, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1),
        go.adagrad,
        {},
    ),
}
FUSABLE = {k for k, (_, _, alias, _) in CASES.items() if alias in (go.sgd, go.adam, go.adamw, go.adagrad)}


def _ours(alias, kw, extra, fused):
    extra = dict(extra, decay_mask="all")
    if fused is not None:
        extra["fused"] = fused
    return lambda m: alias(m.parameters(), **kw, **extra)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float64_trajectory_equals_torch(name, train):
    cls, kw, alias, extra = CASES[name]
    ref = train(lambda m: cls(m.parameters(), **kw), dtype=torch.float64)
    paths = [False, True] if name in FUSABLE else [None]
    for fused in paths:
        ours = train(_ours(alias, kw, extra, fused), dtype=torch.float64)
        err = (ours - ref).abs().max().item()
        assert err < 1e-10, f"{name} fused={fused}: max |diff| {err:.3g}"
    assert (ref - train(lambda m: cls(m.parameters(), **kw), steps=0, dtype=torch.float64)).abs().max() > 1e-3


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_trajectory_equals_torch_to_roundoff(name, train):
    cls, kw, alias, extra = CASES[name]
    ref = train(lambda m: cls(m.parameters(), **kw))
    sens = (train(lambda m: cls(m.parameters(), **kw), perturb=True) - ref).abs().max().item()
    tol = max(2e-6, 4 * sens)
    ours = train(_ours(alias, kw, extra, None))
    err = (ours - ref).abs().max().item()
    assert err <= tol, f"{name}: max |diff| {err:.3g} > tol {tol:.3g} (torch 1-ulp sensitivity {sens:.3g})"


def test_weight_decay_with_auto_mask_equals_torch_param_groups(train):
    # decay_mask="auto" is the usual torch recipe of two groups: decay on
    # matrices, none on biases.
    def torch_groups(m):
        decay = [p for p in m.parameters() if p.ndim >= 2]
        rest = [p for p in m.parameters() if p.ndim < 2]
        return torch.optim.AdamW(
            [{"params": decay}, {"params": rest, "weight_decay": 0.0}], lr=1e-3, weight_decay=0.1
        )

    ref = train(torch_groups, dtype=torch.float64)
    for fused in (False, True):
        ours = train(lambda m, f=fused: go.adamw(m.parameters(), lr=1e-3, weight_decay=0.1, fused=f),
                     dtype=torch.float64)
        assert (ours - ref).abs().max().item() < 1e-10
    all_decay = train(lambda m: go.adamw(m.parameters(), lr=1e-3, weight_decay=0.1, decay_mask="all"),
                      dtype=torch.float64)
    assert (all_decay - ref).abs().max().item() > 1e-6


def test_lr_scheduler_drives_our_lr(train):
    def sched(opt):
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=200)

    ref = train(lambda m: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9), scheduler=sched,
                dtype=torch.float64)
    ours = train(lambda m: go.sgd(m.parameters(), lr=0.01, momentum=0.9), scheduler=sched,
                 dtype=torch.float64)
    const = train(lambda m: go.sgd(m.parameters(), lr=0.01, momentum=0.9), dtype=torch.float64)
    assert (ours - ref).abs().max().item() < 1e-10
    assert (ours - const).abs().max().item() > 1e-3  # the schedule (lr and momentum) mattered


def test_step_lr_changes_group_lr(problem):
    X, y, model = problem
    net = model()
    opt = go.adam(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(X), y).backward()
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025])
