"""polynomial, linear, wsd, cosine num_cycles/min_lr, inverse_sqrt timescale against Hugging Face.

Step for step, as plain functions and through ``attach`` on two param groups.
Marked slow: importing transformers takes seconds.
"""

from __future__ import annotations

import pytest
import torch

from gradwise.schedules import attach, inverse_sqrt, linear, polynomial, warmup_cosine, wsd

pytestmark = pytest.mark.slow
LRS = [0.1, 0.004]


def _groups():
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in LRS],
                           lr=LRS[0])


def _run(opt, sched, steps):
    out = []
    for _ in range(steps):
        out.extend(g["lr"] for g in opt.param_groups)
        opt.step()
        sched.step()
    return out


def _check(hf_name, ours, steps, **hf_kw):
    transformers = pytest.importorskip("transformers")
    opt_hf = _groups()
    ref = _run(opt_hf, transformers.get_scheduler(hf_name, opt_hf, **hf_kw), steps)
    opt = _groups()
    assert _run(opt, attach(opt, ours), steps) == pytest.approx(ref, rel=1e-12, abs=1e-15)
    assert [LRS[0] * ours(t) for t in range(steps)] == pytest.approx(ref[::2], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("power, lr_end", [(1.0, 1e-7), (2.0, 1e-3), (0.5, 0.0)])
def test_polynomial_equals_hf(power, lr_end):
    # HF's lr_end is absolute (relative to optimizer.defaults["lr"]); ours a factor.
    _check("polynomial", polynomial(total_steps=80, power=power, warmup=8, end_factor=lr_end / LRS[0]),
           90, num_warmup_steps=8, num_training_steps=80,
           scheduler_specific_kwargs={"power": power, "lr_end": lr_end})


def test_linear_equals_hf():
    _check("linear", linear(total_steps=60, warmup=7), 70, num_warmup_steps=7, num_training_steps=60)


@pytest.mark.parametrize("warmup_type", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize("decay_type", ["linear", "cosine", "1-sqrt"])
def test_wsd_equals_hf(warmup_type, decay_type):
    kw = {"num_decay_steps": 20, "warmup_type": warmup_type, "decay_type": decay_type,
          "min_lr_ratio": 0.05, "num_cycles": 0.5}
    s = wsd(total_steps=100, warmup=10, decay=20, warmup_type=warmup_type, decay_type=decay_type,
            min_factor=0.05)
    _check("warmup_stable_decay", s, 110, num_warmup_steps=10, num_training_steps=100,
           scheduler_specific_kwargs=kw)


@pytest.mark.parametrize("num_cycles", [0.5, 1.0, 0.25, 1.5])
def test_cosine_with_num_cycles_equals_hf(num_cycles):
    _check("cosine", warmup_cosine(total_steps=90, warmup=9, num_cycles=num_cycles), 91,
           num_warmup_steps=9, num_training_steps=90, scheduler_specific_kwargs={"num_cycles": num_cycles})


def test_cosine_with_min_lr_equals_hf():
    _check("cosine_with_min_lr", warmup_cosine(total_steps=90, warmup=9, min_factor=0.1, num_cycles=0.75),
           91, num_warmup_steps=9, num_training_steps=90,
           scheduler_specific_kwargs={"num_cycles": 0.75, "min_lr_rate": 0.1})


@pytest.mark.parametrize("timescale", [None, 40, 500])
def test_inverse_sqrt_with_timescale_equals_hf(timescale):
    _check("inverse_sqrt", inverse_sqrt(warmup_steps=25, timescale=timescale), 400,
           num_warmup_steps=25, scheduler_specific_kwargs={"timescale": timescale})
