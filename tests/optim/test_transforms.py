"""Single transforms against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from gradwise import optim as go
from gradwise.errors import ConfigError
from gradwise.regularization import L1


def _run(t, grads, param=None, group=None):
    param = torch.zeros(2, 2) if param is None else param
    state = t.init(param)
    out = []
    for g in grads:
        u, state = t.update(g, state, param, group or {})
        out.append(u.clone())
    return out, state


def test_momentum_first_step_is_undamped_then_damped():
    g1, g2 = torch.full((2, 2), 1.0), torch.full((2, 2), 2.0)
    (u1, u2), state = _run(go.scale_by_momentum(0.9, dampening=0.5), [g1, g2])
    assert torch.equal(u1, g1)  # b = g on the first step
    assert torch.allclose(u2, torch.full((2, 2), 0.9 * 1.0 + 0.5 * 2.0))
    assert state.momentum_buffer is not None


def test_nesterov_adds_momentum_times_buffer():
    g1, g2 = torch.full((2, 2), 1.0), torch.full((2, 2), 2.0)
    (u1, u2), _ = _run(go.scale_by_momentum(0.5, nesterov=True), [g1, g2])
    assert torch.allclose(u1, torch.full((2, 2), 1.0 + 0.5 * 1.0))
    b2 = 0.5 * 1.0 + 2.0
    assert torch.allclose(u2, torch.full((2, 2), 2.0 + 0.5 * b2))


def test_momentum_does_not_modify_its_input():
    g = torch.ones(2, 2)
    t = go.scale_by_momentum(0.9)
    u, state = _run(t, [g, g])
    assert torch.equal(g, torch.ones(2, 2))


def test_adam_matches_formula_for_two_steps():
    b1, b2, eps = 0.9, 0.99, 1e-8
    g1, g2 = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, 4.0]])
    (u1, u2), state = _run(go.scale_by_adam((b1, b2), eps), [g1, g2], param=torch.zeros(1, 2))
    m = (1 - b1) * g1
    v = (1 - b2) * g1**2
    assert torch.allclose(u1, (m / (1 - b1)) / ((v / (1 - b2)).sqrt() + eps))
    m, v = b1 * m + (1 - b1) * g2, b2 * v + (1 - b2) * g2**2
    assert torch.allclose(u2, (m / (1 - b1**2)) / ((v / (1 - b2**2)).sqrt() + eps))
    assert state.step.item() == 2 and state.max_exp_avg_sq is None


def test_amsgrad_uses_running_max_of_second_moment():
    g1, g2 = torch.tensor([[10.0]]), torch.tensor([[0.0]])
    _, state = _run(go.scale_by_adam(amsgrad=True), [g1, g2], param=torch.zeros(1, 1))
    assert state.max_exp_avg_sq.item() == pytest.approx(0.001 * 100)
    assert state.exp_avg_sq.item() < state.max_exp_avg_sq.item()


def test_rms_centered_divides_by_standard_deviation():
    a, eps = 0.5, 1e-8
    g1, g2 = torch.tensor([[1.0]]), torch.tensor([[3.0]])
    (_, u2), _ = _run(go.scale_by_rms(a, eps, centered=True), [g1, g2], param=torch.zeros(1, 1))
    s = a * (1 - a) * 1.0 + (1 - a) * 9.0
    m = a * (1 - a) * 1.0 + (1 - a) * 3.0
    assert u2.item() == pytest.approx(3.0 / (math.sqrt(s - m * m) + eps), rel=1e-6)


def test_adagrad_accumulates_and_decays():
    g = torch.tensor([[2.0]])
    (u1, u2), state = _run(go.scale_by_adagrad(lr_decay=0.5, initial_accumulator_value=1.0), [g, g],
                           param=torch.zeros(1, 1))
    assert u1.item() == pytest.approx(2.0 / math.sqrt(5.0))
    assert u2.item() == pytest.approx(2.0 / math.sqrt(9.0) / 1.5)
    assert state.sum.item() == 9.0


def test_weight_decay_and_lr_read_the_group():
    w = torch.full((2, 2), 3.0)
    g = torch.ones(2, 2)
    (u,), _ = _run(go.add_l2(0.1), [g], param=w, group={"weight_decay": 0.5})
    assert torch.allclose(u, g + 0.5 * w)
    (u,), _ = _run(go.add_decayed_weights(0.1), [g], param=w)
    assert torch.allclose(u, g + 0.1 * w)
    (u,), _ = _run(go.scale_by_lr(0.1), [g], group={"lr": 0.25})
    assert torch.allclose(u, -0.25 * g)


def test_chain_runs_leaves_in_order_and_applies_masks():
    t = go.chain(go.add_l2(1.0), go.scale_by_lr(0.5))
    w = torch.full((3,), 2.0)  # 1-D: the "auto" mask of add_l2 skips it
    (u,), _ = _run(t, [torch.ones(3)], param=w)
    assert torch.allclose(u, torch.full((3,), -0.5))
    w2 = torch.full((1, 3), 2.0)
    (u,), states = _run(t, [torch.ones(1, 3)], param=w2)
    assert torch.allclose(u, torch.full((1, 3), -0.5 * 3.0))
    assert len(states) == 2


def test_chain_flattens_nested_chains():
    inner = go.chain(go.scale_by_adam(), go.add_decayed_weights(0.1))
    outer = go.chain(inner, go.scale_by_lr(0.1))
    assert [type(t).__name__ for t in outer.leaves()] == ["ScaleByAdam", "AddDecayedWeights", "ScaleByLr"]
    assert "scale_by_adam" in repr(outer)


def test_clip_needs_the_optimizer_in_a_standalone_chain():
    with pytest.raises(TypeError, match="all parameters"):
        _run(go.chain(go.clip_by_global_norm(1.0)), [torch.ones(2, 2)])


def test_prox_is_identity_inside_the_chain():
    g = torch.ones(2, 2)
    (u,), _ = _run(go.prox(L1(0.1)), [g])
    assert torch.equal(u, g)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: go.scale_by_adam(betas=(0.9, 1.0)), r"betas\[1\]"),
        (lambda: go.scale_by_adam(betas=0.9), "pair"),
        (lambda: go.scale_by_momentum(-0.1), "momentum"),
        (lambda: go.scale_by_rms(alpha=1.5), "alpha"),
        (lambda: go.scale_by_lr(-1.0), "lr"),
        (lambda: go.add_l2(-1e-3), "weight_decay"),
        (lambda: go.add_decayed_weights(0.1, mask=3), "mask"),
        (lambda: go.clip_by_global_norm(float("nan")), "max_norm"),
    ],
)
def test_bad_hyperparameters_raise_config_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        make()
