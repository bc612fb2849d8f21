"""Our schedules, attached to an optimizer, reproduce torch's LR schedulers.

torch's schedulers mostly update the lr recursively (``lr *= ratio``), ours
evaluate a closed form, so the two differ by accumulated round-off: over
these runs at most ~1e-15 of the base lr (measured), so the tolerance is
``atol = 1e-14 * base`` plus ``rtol = 1e-12``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as L

from gradwise.schedules import (
    attach,
    cosine,
    exponential,
    linear_warmup,
    one_cycle,
    sequence,
    step_decay,
    warmup_cosine,
)

BASE = 0.1


def lr_trace(make_scheduler, steps: int, lrs=(BASE,)) -> np.ndarray:
    """The lr of each group at each of ``steps`` optimizer steps."""
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs]
    opt = torch.optim.SGD(groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notes on SequentialLR etc.
        sched = make_scheduler(opt)
        out = []
        for _ in range(steps):
            out.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
    return np.array(out)


CASES = {
    "StepLR": (lambda o: L.StepLR(o, step_size=7, gamma=0.5), step_decay(7, 0.5), 500),
    "ExponentialLR": (lambda o: L.ExponentialLR(o, gamma=0.99), exponential(0.99), 2000),
    "CosineAnnealingLR": (
        lambda o: L.CosineAnnealingLR(o, T_max=1000, eta_min=0.01 * BASE),
        cosine(1000, min_factor=0.01),
        1001,
    ),
    "CosineAnnealingLR-eta0": (lambda o: L.CosineAnnealingLR(o, T_max=333), cosine(333), 334),
    "WarmRestarts-T_mult1": (
        lambda o: L.CosineAnnealingWarmRestarts(o, T_0=50, eta_min=0.01 * BASE),
        cosine(cycle_steps=50, min_factor=0.01),
        1000,
    ),
    "WarmRestarts-T_mult2": (
        lambda o: L.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=0.01 * BASE),
        cosine(cycle_steps=10, cycle_mult=2, min_factor=0.01),
        2000,
    ),
    "WarmRestarts-T_mult3": (
        lambda o: L.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=3),
        cosine(cycle_steps=7, cycle_mult=3),
        3000,
    ),
    "LinearLR": (
        lambda o: L.LinearLR(o, start_factor=0.25, total_iters=40),
        linear_warmup(40, 0.25),
        100,
    ),
    "SequentialLR-Linear-Cosine": (
        lambda o: L.SequentialLR(
            o, [L.LinearLR(o, 0.1, 1.0, 30), L.CosineAnnealingLR(o, T_max=270)], milestones=[30]
        ),
        warmup_cosine(300, warmup=30, start_factor=0.1),
        301,
    ),
    "SequentialLR-Linear-Exponential": (
        lambda o: L.SequentialLR(
            o, [L.LinearLR(o, 0.1, 1.0, 30), L.ExponentialLR(o, 0.99)], milestones=[30]
        ),
        sequence([linear_warmup(30, 0.1), exponential(0.99)], [30]),
        300,
    ),
    "SequentialLR-Step-Cosine-Restarts": (
        lambda o: L.SequentialLR(
            o,
            [L.StepLR(o, 5, 0.5), L.CosineAnnealingWarmRestarts(o, T_0=20, T_mult=2)],
            milestones=[25],
        ),
        sequence([step_decay(5, 0.5), cosine(cycle_steps=20, cycle_mult=2)], [25]),
        400,
    ),
}
for _strategy in ("cos", "linear"):
    for _three in (False, True):
        CASES[f"OneCycleLR-{_strategy}-three_phase={_three}"] = (
            lambda o, s=_strategy, t=_three: L.OneCycleLR(
                o,
                max_lr=BASE,
                total_steps=1000,
                anneal_strategy=s,
                three_phase=t,
                cycle_momentum=False,
            ),
            one_cycle(1000, anneal=_strategy, three_phase=_three),
            1000,
        )
CASES["OneCycleLR-odd"] = (
    lambda o: L.OneCycleLR(
        o,
        max_lr=BASE,
        total_steps=37,
        pct_start=0.27,
        div_factor=7.0,
        final_div_factor=30.0,
        cycle_momentum=False,
    ),
    one_cycle(37, pct_start=0.27, div_factor=7.0, final_div_factor=30.0),
    37,
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_attached_schedule_matches_torch_scheduler(case):
    make_torch, ours, steps = CASES[case]
    expected = lr_trace(make_torch, steps)
    got = lr_trace(lambda o: attach(o, ours), steps)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14 * BASE)
    # The schedule itself is the multiplier of the same sequence.
    direct = np.array([[BASE * ours(t)] for t in range(steps)])
    np.testing.assert_allclose(direct, expected, rtol=1e-12, atol=1e-14 * BASE)


def test_cosine_with_several_groups_matches_torch_per_group():
    lrs = (1e-2, 1e-3, 3e-4)
    expected = lr_trace(lambda o: L.CosineAnnealingLR(o, T_max=200), 201, lrs)
    got = lr_trace(lambda o: attach(o, cosine(200)), 201, lrs)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-16)
