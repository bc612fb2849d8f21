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


class _Stop(Exception):
    pass


@pytest.mark.parametrize("section", ["activations", "weight-decay", "regularize", "sparsity"])
def test_quick_and_full_sweep_sections_never_share_a_study(section, tmp_path, monkeypatch):
    # Optuna loads an existing study of the same name: a full section run in the
    # directory of a quick one would resume the quick trials. Each run_sweep call
    # is recorded (its run directory) and stopped before any training.
    import gradwise.sweep
    from gradwise.demo._registry import run_section

    dirs: dict[bool, list] = {True: [], False: []}

    def record(quick):
        def fake(cfg, *args, **kwargs):
            dirs[quick].append(cfg.run_dir.resolve())
            raise _Stop

        return fake

    for quick in (True, False):
        monkeypatch.setattr(gradwise.sweep, "run_sweep", record(quick))
        with pytest.raises(_Stop):
            run_section(section, tmp_path, quick=quick)
    (q,), (f,) = dirs[True], dirs[False]
    assert q != f and q.parent == f.parent == tmp_path.resolve()
    assert q.name == f.name + "_quick"
