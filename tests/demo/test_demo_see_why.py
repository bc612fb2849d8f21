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


def test_weight_decay_demo_labels_each_studys_trial_list(tmp_path, monkeypatch, capsys):
    # the section runs two sweeps, each printing "trial 0..n"; a line before each says which
    import gradwise.sweep
    import gradwise.sweep._report
    from gradwise.demo import _see_why, _weight_decay

    calls = []

    def fake_sweep(cfg, *args, **kwargs):
        calls.append(cfg.name)
        print("trial 0: complete", flush=True)
        return cfg

    def grid(*args, **kwargs):
        if len(calls) == 2:
            raise _Stop
        return [[1.0]], ["0.1"], ["0.001"]

    monkeypatch.setattr(gradwise.sweep, "run_sweep", fake_sweep)
    monkeypatch.setattr(_see_why, "_open", lambda res: (None, res))
    monkeypatch.setattr(gradwise.sweep._report, "grid_matrix", grid)
    with pytest.raises(_Stop):
        _weight_decay.weight_decay(tmp_path, quick=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines == [
        "AdamW (decoupled): 3 lr x 4 weight decay trials",
        "trial 0: complete",
        "Adam + L2 (coupled): 3 lr x 4 weight decay trials",
        "trial 0: complete",
    ]
    assert calls == ["sweep_weight_decay_quick", "sweep_adam_l2_quick"]
