"""Warm-up schedules against Hugging Face's (an independent implementation).

Marked slow: importing transformers takes seconds.
"""

from __future__ import annotations

import pytest
import torch

from gradwise.schedules import inverse_sqrt, warmup_cosine

pytestmark = pytest.mark.slow


def hf_multipliers(factory, steps: int, **kwargs) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = factory(opt, **kwargs)
    return [sched.lr_lambdas[0](t) for t in range(steps)]


def test_warmup_cosine_equals_get_cosine_schedule_with_warmup():
    optimization = pytest.importorskip("transformers.optimization")
    expected = hf_multipliers(
        optimization.get_cosine_schedule_with_warmup,
        1001,
        num_warmup_steps=37,
        num_training_steps=1000,
    )
    s = warmup_cosine(1000, warmup=37)
    assert [s(t) for t in range(1001)] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_inverse_sqrt_equals_get_inverse_sqrt_schedule():
    optimization = pytest.importorskip("transformers.optimization")
    expected = hf_multipliers(optimization.get_inverse_sqrt_schedule, 5000, num_warmup_steps=250)
    s = inverse_sqrt(250)
    assert [s(t) for t in range(5000)] == pytest.approx(expected, rel=1e-12, abs=1e-15)
