"""Penalty values and proximal operators: hand-computed values and properties."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gradwise.errors import ConfigError
from gradwise.regularization import L1, L2, ElasticNet, Penalty, penalty

F64 = torch.float64


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))


def test_values_follow_glmnet_objective():
    net = _net()
    w1, w2 = net[0].weight, net[2].weight
    l1 = w1.abs().sum() + w2.abs().sum()
    sq = w1.pow(2).sum() + w2.pow(2).sum()
    assert L1(0.3).value(net).item() == pytest.approx(0.3 * l1.item(), rel=1e-6)
    assert L2(0.3).value(net).item() == pytest.approx(0.15 * sq.item(), rel=1e-6)
    en = ElasticNet(0.3, 0.25).value(net.named_parameters()).item()
    assert en == pytest.approx(0.3 * (0.25 * l1.item() + 0.75 / 2 * sq.item()), rel=1e-6)


def test_value_masks_and_inputs():
    net = _net()
    every = sum(p.abs().sum() for p in net.parameters()).item()
    assert L1(1.0, mask="all").value(net.parameters()).item() == pytest.approx(every, rel=1e-6)
    only = L1(1.0, mask=["2.*"]).value(net).item()
    assert only == pytest.approx(sum(p.abs().sum() for p in net[2].parameters()).item(), rel=1e-6)
    with pytest.raises(ConfigError, match="named_parameters"):
        L1(1.0, mask=["2.*"]).value(net.parameters())
    assert L1(1.0).value([torch.ones(3)]).item() == 0.0  # "auto": 1-D tensors are skipped


def test_value_is_differentiable_and_l2_gradient_is_weight_decay():
    w = nn.Parameter(torch.randn(3, 2))
    L2(0.7).value([w]).backward()
    assert torch.allclose(w.grad, 0.7 * w.detach())


def test_penalty_factor_scales_per_parameter():
    net = _net()
    pen = L1(1.0, factor={"0.*": 2.0, "2.weight": torch.tensor([[0.0], [1.0]])})
    expected = 2 * net[0].weight.abs().sum() + net[2].weight[1].abs().sum()
    assert pen.value(net).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ConfigError, match="factor"):
        L1(1.0, factor={"*": -1.0}).value(net)
    with pytest.raises(ConfigError, match="names"):
        L1(1.0, factor={"*": 1.0}).value(net.parameters())


def test_prox_hand_values_and_exact_zeros():
    v = torch.tensor([[3.0, -0.5, 0.2, -2.0]])
    assert torch.equal(L1(0.5).prox(v.clone(), 2.0), torch.tensor([[2.0, 0.0, 0.0, -1.0]]))
    assert torch.allclose(L2(0.5).prox(v.clone(), 2.0), v / 2.0)
    out = ElasticNet(1.0, 0.5).prox(v.clone(), 1.0)
    assert torch.allclose(out, torch.tensor([[2.5, 0.0, 0.0, -1.5]]) / 1.5)
    assert (out == 0).sum() == 2


def test_prox_is_in_place_and_works_on_leaf_parameters():
    w = nn.Parameter(torch.tensor([[1.0, -0.1]]))
    out = L1(0.5).prox(w, 1.0)
    assert out is w and torch.equal(w.detach(), torch.tensor([[0.5, 0.0]]))


def test_prox_with_tensor_factor_thresholds_per_entry():
    v = torch.tensor([[1.0, 1.0, 1.0]])
    f = torch.tensor([[0.0, 1.0, 4.0]])
    out = ElasticNet(0.5, 0.5).prox(v.clone(), 1.0, f)
    expected = torch.tensor([[1.0, 0.75 / 1.25, 0.0]])
    assert torch.allclose(out, expected)


def test_bad_penalty_arguments():
    with pytest.raises(ConfigError, match="lam must be"):
        L1(-0.1)
    with pytest.raises(ConfigError, match=r"alpha must be in \[0, 1\]"):
        ElasticNet(0.1, 1.2)
    with pytest.raises(ConfigError, match="step"):
        L1(0.1).prox(torch.ones(2, 2), -1.0)
    with pytest.raises(ConfigError, match="mask"):
        L1(0.1, mask=5)


def test_penalty_builder():
    assert isinstance(penalty("l1", 0.1), L1)
    assert isinstance(penalty("l2", 0.1), L2)
    en = penalty("elastic_net", 0.1, 0.3)
    assert (en.l1, en.l2) == pytest.approx((0.03, 0.07))
    with pytest.raises(ConfigError, match="did you mean 'elastic_net'"):
        penalty("elasticnet", 0.1, 0.5)
    assert isinstance(en, Penalty)


def test_alpha_ends_are_lasso_and_ridge():
    v = torch.linspace(-2, 2, 41, dtype=F64).reshape(1, -1)
    assert torch.equal(ElasticNet(0.3, 1.0).prox(v.clone(), 0.7), L1(0.3).prox(v.clone(), 0.7))
    assert torch.equal(ElasticNet(0.3, 0.0).prox(v.clone(), 0.7), L2(0.3).prox(v.clone(), 0.7))


finite = st.floats(-10, 10, allow_nan=False, width=64)
vectors = st.lists(finite, min_size=1, max_size=20)
lams = st.floats(0, 5, allow_nan=False)
alphas = st.floats(0, 1, allow_nan=False)
steps = st.floats(0, 3, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(vectors, vectors, lams, steps)
def test_soft_threshold_is_firmly_non_expansive(x, y, lam, step):
    n = min(len(x), len(y))
    x, y = torch.tensor([x[:n]], dtype=F64), torch.tensor([y[:n]], dtype=F64)
    px, py = L1(lam).prox(x.clone(), step), L1(lam).prox(y.clone(), step)
    d, dp = x - y, px - py
    assert torch.all(dp.abs() <= d.abs() + 1e-12)  # non-expansive, entry by entry
    assert (dp * d).sum() >= (dp * dp).sum() - 1e-9  # firmly non-expansive


@settings(max_examples=100, deadline=None)
@given(vectors, lams, alphas, steps)
def test_elastic_net_prox_minimizes_its_objective(v, lam, alpha, step):
    pen = ElasticNet(lam, alpha)
    v = torch.tensor([v], dtype=F64)
    w = pen.prox(v.clone(), step)

    def objective(x):
        return 0.5 * ((x - v) ** 2).sum() + step * pen.value([x])

    # Optimality: 0 is in (w - v) + step * dP(w) for every coordinate.
    l1, l2 = step * pen.l1, step * pen.l2
    nz = w != 0
    assert torch.allclose((w - v + l1 * torch.sign(w) + l2 * w)[nz], torch.zeros(1, dtype=F64), atol=1e-9)
    assert torch.all(v[~nz].abs() <= l1 + 1e-12)
    # and no nearby point does better
    g = torch.Generator().manual_seed(0)
    for scale in (1e-3, 1e-1, 1.0):
        other = w + scale * torch.randn(w.shape, generator=g, dtype=F64)
        assert objective(other) >= objective(w) - 1e-9


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_softshrink_wrapper_equals_torchs_softshrink(dtype):
    # The one place torch's softshrink kernel is called with out=x (through
    # torch.nn.functional.softshrink); this fails loudly if that changes.
    from gradwise.regularization._shrink import softshrink_

    x = torch.randn(1000, dtype=dtype, generator=torch.Generator().manual_seed(0))
    ref = nn.functional.softshrink(x, 0.3)
    ptr = x.data_ptr()
    out = softshrink_(x, 0.3)
    assert torch.equal(x, ref) and out.data_ptr() == ptr == x.data_ptr()
    assert (x == 0).sum().item() > 100


def test_prox_many_with_one_shared_factor_equals_prox_per_tensor():
    pen = ElasticNet(0.3, 0.5)
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(7, 3, generator=g) for _ in range(4)]
    shared = [x.clone() for x in xs]
    pen.prox_many(shared, 0.7, 1.5)
    for x, y in zip(xs, shared):
        want = pen.prox(x.clone(), 0.7, 1.5)
        assert torch.equal(y, want)
        assert (y == 0).any()
