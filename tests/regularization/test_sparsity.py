"""``sparsity`` counts exact zeros per layer, per parameter and in total."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradwise.regularization import sparsity


def _net():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 2.0]))
        net[2].weight.fill_(1.0)
        net[2].bias.fill_(0.0)
    return net


def test_counts_per_parameter_layer_and_total():
    rep = sparsity(_net())
    assert rep.params == {"0.weight": 0.75, "0.bias": 0.5, "2.weight": 0.0, "2.bias": 1.0}
    assert rep.layers == {"0": pytest.approx(4 / 6), "2": pytest.approx(1 / 3)}
    assert (rep.zeros, rep.numel) == (5, 9) and rep.total == pytest.approx(5 / 9)
    assert "total" in str(rep) and "55.6%" in str(rep)


def test_mask_restricts_the_count():
    rep = sparsity(_net(), mask="auto")
    assert set(rep.params) == {"0.weight", "2.weight"}
    assert rep.total == pytest.approx(3 / 6)


def test_plain_tensors_are_numbered():
    rep = sparsity([torch.zeros(2), torch.ones(2)])
    assert rep.params == {"0": 1.0, "1": 0.0} and rep.total == 0.5
