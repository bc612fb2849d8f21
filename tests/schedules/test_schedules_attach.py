"""`attach`: a torch LRScheduler that keeps group ratios and resumes exactly."""

from __future__ import annotations

import io
import warnings

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.schedules import (
    ScheduledLR,
    attach,
    constant,
    cosine,
    one_cycle,
    sequence,
    slanted_triangular,
    warmup_cosine,
)


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def two_group_adam(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        [
            {"params": model[0].parameters(), "lr": 1e-4},
            {"params": model[2].parameters(), "lr": 1e-3},
        ]
    )


def train_steps(model, opt, sched, steps: int, start: int = 0) -> list[list[float]]:
    """Run ``steps`` optimizer steps on fixed data; return the lrs used at each."""
    lrs = []
    for i in range(start, start + steps):
        g = torch.Generator().manual_seed(i)
        x, y = torch.randn(16, 5, generator=g), torch.randn(16, 1, generator=g)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        lrs.append([grp["lr"] for grp in opt.param_groups])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize(
    "sched",
    [
        warmup_cosine(60, 6),
        one_cycle(60),
        slanted_triangular(60),
        cosine(cycle_steps=7, cycle_mult=2),
    ],
    ids=lambda s: type(s).__name__,
)
def test_discriminative_group_lrs_keep_their_ratio_at_every_step(sched):
    model = make_model()
    opt = two_group_adam(model)
    scheduler = attach(opt, sched)
    for step, (low, high) in enumerate(train_steps(model, opt, scheduler, 60)):
        assert high == pytest.approx(1e-3 * sched(step), rel=1e-15, abs=0)
        if high > 0:
            assert high / low == pytest.approx(10.0, rel=1e-12)
    assert [g["initial_lr"] for g in opt.param_groups] == [1e-4, 1e-3]


def save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def load(blob: bytes):
    return torch.load(io.BytesIO(blob), weights_only=True)


@pytest.mark.parametrize("optimizer_first", [True, False])
def test_state_dict_round_trip_mid_way_resumes_identical_lrs_and_weights(optimizer_first):
    sched = sequence([warmup_cosine(40, 5, min_factor=0.1), constant(0.1)], [40])
    # Uninterrupted reference run.
    ref_model = make_model()
    ref_opt = two_group_adam(ref_model)
    ref_sched = attach(ref_opt, sched)
    ref_lrs = train_steps(ref_model, ref_opt, ref_sched, 50)

    # Interrupted run: 23 steps, save through torch.save(weights_only-safe), resume elsewhere.
    model = make_model()
    opt = two_group_adam(model)
    scheduler = attach(opt, sched)
    first = train_steps(model, opt, scheduler, 23)
    blob = save(
        {"model": model.state_dict(), "opt": opt.state_dict(), "sched": scheduler.state_dict()}
    )
    state = load(blob)

    model2 = make_model(seed=1)  # different weights, to be overwritten
    opt2 = two_group_adam(model2)
    scheduler2 = attach(opt2, constant())  # the schedule comes back from the state
    model2.load_state_dict(state["model"])
    if optimizer_first:
        opt2.load_state_dict(state["opt"])
        scheduler2.load_state_dict(state["sched"])
    else:
        scheduler2.load_state_dict(state["sched"])
        opt2.load_state_dict(state["opt"])
    assert scheduler2.schedule == sched and scheduler2.last_epoch == 23
    rest = train_steps(model2, opt2, scheduler2, 27, start=23)

    assert first + rest == ref_lrs  # exactly equal floats
    for a, b in zip(model2.parameters(), ref_model.parameters()):
        assert torch.equal(a, b)


def test_custom_callable_is_not_stored_and_must_be_given_again():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    fn = lambda t: 0.5**t  # noqa: E731
    scheduler = attach(opt, fn)
    for _ in range(3):
        opt.step()
        scheduler.step()
    state = scheduler.state_dict()
    assert state["schedule"] is None
    opt2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler2 = attach(opt2, fn)
    scheduler2.load_state_dict(state)
    assert scheduler2.schedule is fn and opt2.param_groups[0]["lr"] == 0.125
    opt2.step()
    scheduler2.step()
    assert opt2.param_groups[0]["lr"] == 0.0625


def test_per_is_recorded_and_validated():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = attach(opt, cosine(10), per="epoch")
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    assert isinstance(scheduler, ScheduledLR) and scheduler.per == "epoch"
    assert scheduler.state_dict()["per"] == "epoch"
    with pytest.raises(ConfigError, match="per must be 'step' or 'epoch'"):
        attach(opt, cosine(10), per="batch")
    with pytest.raises(ConfigError, match="callable"):
        attach(opt, {"name": "cosine"})


def test_first_lr_is_schedule_at_zero_and_get_last_lr_follows():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    scheduler = attach(opt, one_cycle(20, div_factor=4.0))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # correct call order: no torch warning
        for _ in range(5):
            opt.step()
            scheduler.step()
    assert scheduler.get_last_lr() == [opt.param_groups[0]["lr"]]
    assert scheduler.last_epoch == 5


def test_scaling_base_lrs_rescales_the_running_schedule():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = attach(opt, cosine(10))
    for _ in range(3):
        opt.step()
        scheduler.step()
    scheduler.base_lrs = [b * 0.5 for b in scheduler.base_lrs]  # e.g. after a divergence
    opt.step()
    scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * cosine(10)(4), rel=1e-15)
