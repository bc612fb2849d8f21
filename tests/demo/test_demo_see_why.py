"""The "activations" teaching sweep, quick version: sigmoid's gradients vanish through depth."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_quick_activations_demo_shows_vanishing_sigmoid_gradients(tmp_path):
    from gradwise.demo._registry import run_section

    r = run_section("activations", tmp_path, quick=True)
    acts = ("sigmoid", "tanh", "relu", "leaky_relu", "elu")
    assert all(f"{a}_first_over_last_grad" in r for a in acts)
    # through 8 sigmoid layers the first layer gets a sliver of the last layer's gradient
    assert r["sigmoid_first_over_last_grad"] < 0.1 * r["relu_first_over_last_grad"]
    assert r["sigmoid_first_over_last_grad"] < 0.01
    # and the ReLU family learns where sigmoid barely does
    assert r["relu_accuracy"] > r["sigmoid_accuracy"]
    assert r["sigmoid_most_saturated"] > 0.0
