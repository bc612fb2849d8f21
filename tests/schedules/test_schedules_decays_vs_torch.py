"""polynomial, linear, cyclic against torch's schedulers, step for step, as functions and via attach."""

from __future__ import annotations

import math

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.schedules import attach, cyclic, linear, polynomial, schedule, slanted_triangular


def _groups(lrs):
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs])


def _lrs(opt, sched, steps):
    out = []  # flat: step-major, group-minor
    for _ in range(steps):
        out.extend(g["lr"] for g in opt.param_groups)
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_polynomial_equals_torch_polynomial_lr_in_every_group(power):
    lrs = [0.1, 0.03]
    opt_t = _groups(lrs)
    ref = _lrs(opt_t, torch.optim.lr_scheduler.PolynomialLR(opt_t, total_iters=40, power=power), 50)
    opt = _groups(lrs)
    s = polynomial(total_steps=40, power=power)
    got = _lrs(opt, attach(opt, s), 50)
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-15)
    assert [s(t) for t in range(50)] == pytest.approx([r / lrs[0] for r in ref[::2]], rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("start, end", [(1.0, 0.1), (0.5, 0.0), (0.25, 1.0)])
def test_linear_equals_torch_linear_lr_with_end_factor(start, end):
    lrs = [0.1, 0.02]
    opt_t = _groups(lrs)
    sched_t = torch.optim.lr_scheduler.LinearLR(opt_t, start_factor=start, end_factor=end, total_iters=30)
    ref = _lrs(opt_t, sched_t, 40)
    opt = _groups(lrs)
    got = _lrs(opt, attach(opt, linear(total_steps=30, start_factor=start, end_factor=end)), 40)
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-15)
    assert got[-2:] == pytest.approx([lr * end for lr in lrs])


@pytest.mark.parametrize("mode, gamma", [("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.99)])
@pytest.mark.parametrize("up, down", [(5, None), (4, 7)])
def test_cyclic_equals_torch_cyclic_lr_with_per_group_base_and_max(mode, gamma, up, down):
    base, peak = [0.01, 0.002], [0.1, 0.05]  # different ratios per group
    opt_t = _groups(base)
    sched_t = torch.optim.lr_scheduler.CyclicLR(
        opt_t, base_lr=base, max_lr=peak, step_size_up=up, step_size_down=down, mode=mode,
        gamma=gamma, cycle_momentum=False)
    ref = _lrs(opt_t, sched_t, 60)
    opt = _groups(peak)
    for g, b in zip(opt.param_groups, base):
        g["base_lr"] = b
    s = cyclic(step_size_up=up, step_size_down=down, mode=mode, gamma=gamma)
    got = _lrs(opt, attach(opt, s), 60)
    assert got == pytest.approx(ref, rel=1e-12, abs=1e-15)
    # Without a group base_lr, base_factor * peak is the base; as a plain function, the multiplier.
    opt1 = _groups([0.1])
    sched_1 = torch.optim.lr_scheduler.CyclicLR(
        _groups([0.01]), base_lr=0.01, max_lr=0.1, step_size_up=up, step_size_down=down, mode=mode,
        gamma=gamma, cycle_momentum=False)
    one = _lrs(sched_1.optimizer, sched_1, 60)
    s1 = cyclic(step_size_up=up, step_size_down=down, mode=mode, gamma=gamma, base_factor=0.1)
    assert _lrs(opt1, attach(opt1, s1), 60) == pytest.approx(one, rel=1e-12)
    assert [0.1 * s1(t) for t in range(60)] == pytest.approx(one, rel=1e-12)


def test_cyclic_scheduler_resumes_from_its_state_dict():
    opt = _groups([0.1])
    sched = attach(opt, cyclic(step_size_up=3, mode="triangular2"))
    _lrs(opt, sched, 7)
    state = sched.state_dict()
    opt2 = _groups([0.1])
    sched2 = attach(opt2, schedule("constant"))
    sched2.load_state_dict(state)
    assert _lrs(opt2, sched2, 5) == pytest.approx(_lrs(opt, sched, 5))


def test_slanted_triangular_is_the_papers_formula_when_t_cut_frac_is_fractional():
    # Howard & Ruder (2018), eq. 3, literally; T * cut_frac = 10.5.
    T, frac, ratio = 105, 0.1, 32.0
    cut = math.floor(T * frac)
    s = slanted_triangular(total_steps=T, cut_frac=frac, ratio=ratio)
    for t in range(T + 5):
        p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / frac - 1))
        assert s(t) == pytest.approx((1 + max(p, 0.0) * (ratio - 1)) / ratio, rel=1e-12)
    assert s(100) == pytest.approx(1 / ratio) and s(99) > 1 / ratio  # bottom at cut / cut_frac = 100


@pytest.mark.parametrize("name, kw, match", [
    ("polynomial", dict(total_steps=10, warmup=10), "warmup .* must be smaller than total_steps"),
    ("polynomial", dict(total_steps=10, power=-1), "power must be a number"),
    ("linear", dict(total_steps=10, end_factor=1.5), "end_factor must be a number in"),
    ("cyclic", dict(mode="sawtooth"), "unknown cyclic mode 'sawtooth'"),
    ("cyclic", dict(step_size_up=0), "step_size_up must be an integer >= 1"),
    ("wsd", dict(decay=5, warmup=2), "give stable"),
    ("wsd", dict(decay=8, warmup=5, total_steps=10), r"exceed total_steps \(10\)"),
    ("wsd", dict(decay=8, stable=1, decay_type="exp"), "unknown wsd decay_type 'exp'"),
    ("inverse_sqrt", dict(warmup_steps=4, timescale=0), "timescale must be an integer >= 1"),
    ("warmup_cosine", dict(total_steps=10, warmup=2, num_cycles=0), "num_cycles must be a number"),
])
def test_bad_values_name_the_option(name, kw, match):
    with pytest.raises(ConfigError, match=match):
        schedule(name, **kw)


@pytest.mark.parametrize("s", [
    polynomial(total_steps=100, power=2.0, warmup=10, end_factor=0.01),
    linear(total_steps=50, warmup=5, end_factor=0.1),
    cyclic(step_size_up=10, mode="exp_range", gamma=0.999),
    schedule("wsd", total_steps=100, warmup=0.1, decay=0.2, decay_type="1-sqrt"),
])
def test_new_schedules_round_trip_through_their_config(s):
    cfg = s.to_config()
    assert schedule(**cfg) == s
    assert [schedule(**cfg)(t) for t in range(120)] == [s(t) for t in range(120)]
