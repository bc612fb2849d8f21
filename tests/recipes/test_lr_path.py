"""``lr`` from the YAML file to the update: one value, read from the param group at step time.

A spy records the lr that the optimizer step itself uses: the fused kernel's
``group["lr"]`` (``optim._dispatch.run``), the reference path's folded
``w <- w - lr u`` (``Optimizer._finish``) or its ``scale_by_lr``
(``ScaleByLr.update``).
"""

import pytest
import torch

from gradwise.config import load_config
from gradwise.optim import Optimizer, _dispatch
from gradwise.optim._transforms import ScaleByLr
from gradwise.recipes.train import run
from gradwise.train import Callback

YAML = """\
name: lr
data: {{name: breast_cancer}}
model: {{hidden: [8]}}
optimizer: {{name: {name}, lr: 0.0123{extra}}}
training: {{epochs: 2, batch_size: 128}}
callbacks: {{progress: false, checkpoint: {{enabled: false}}}}
"""


@pytest.fixture
def seen(monkeypatch):
    """Every lr an optimizer step used, in order."""
    lrs: list[float] = []
    fused, finish, reference = _dispatch.run, Optimizer._finish, ScaleByLr.update

    def spy_fused(opt, fast, group, plans):
        done = fused(opt, fast, group, plans)
        if done:
            lrs.append(group["lr"])
        return done

    def spy_finish(self, tail, p, u, group, plan):
        if tail is not None and u is not None:  # the folded tail steps by group["lr"]
            lrs.append(group["lr"])
        return finish(self, tail, p, u, group, plan)

    def spy_reference(self, u, state, param, group):
        lrs.append(group["lr"])
        return reference(self, u, state, param, group)

    monkeypatch.setattr(_dispatch, "run", spy_fused)
    monkeypatch.setattr(Optimizer, "_finish", spy_finish)
    monkeypatch.setattr(ScaleByLr, "update", spy_reference)
    return lrs


@pytest.mark.parametrize(
    "name, extra",
    [("adam", ""), ("adamw", ", fused: false"), ("sgd", ", momentum: 0.9"), ("adagrad", ", lr_decay: 0.0")],
)
def test_lr_in_yaml_reaches_the_update_unchanged(tmp_path, seen, name, extra):
    path = tmp_path / "run.yaml"
    path.write_text(YAML.format(name=name, extra=extra))
    result = run(load_config(path, [f"runs_dir={tmp_path}"]), progress=False)
    assert len(seen) >= 2 * 3  # 2 epochs of 3 batches, every tensor of the reference path too
    assert set(seen) == {0.0123}
    assert result.run_dir.joinpath("config.yaml").read_text().count("lr: 0.0123") == 1


class Poison(Callback):
    """Puts a NaN into the weights after step ``at``: the next loss is NaN and the guard rescues."""

    def __init__(self, at):
        self.at, self.done = at, False

    def on_step_end(self, state):
        if state.step == self.at and not self.done:
            self.done = True
            with torch.no_grad():
                next(state.model.parameters()).fill_(float("nan"))


class Places(Callback):
    """After every step: every place the lr is held, and the schedule's factor (after the guard)."""

    def __init__(self):
        self.rows = []

    def on_step_end(self, state):
        g, s = state.optimizer.param_groups[0], state.scheduler
        factor = float(s.schedule(s.last_epoch))
        self.rows.append((g["lr"], g["initial_lr"], s.base_lrs[0], s.get_last_lr()[0], factor))


def test_after_the_guard_halves_lr_every_place_agrees(tmp_path, seen):
    path = tmp_path / "run.yaml"
    path.write_text(YAML.format(name="adam", extra="") + "schedule: {name: cosine}\n")
    cfg = load_config(path, [f"runs_dir={tmp_path}", "callbacks.divergence_guard.snapshot_every=2"])
    places = Places()
    result = run(cfg, progress=False, extra_callbacks=[Poison(at=3), places])
    rescues = [e for e in result.history.events if e.get("kind") == "divergence_rescue"]
    assert len(rescues) == 1
    before = [r for r in places.rows if r[1] == 0.0123]
    after = [r for r in places.rows if r[1] != 0.0123]
    assert len(before) >= 3 and len(after) >= 3
    for lr, initial, base, last, factor in before:
        assert base == initial and lr == last == initial * factor
    for lr, initial, base, last, factor in after:
        assert initial == base == 0.0123 * 0.5  # the base rates, halved together
        assert lr == last == initial * factor  # the schedule goes on from the halved base
    # the step itself used what the group held: the lr after the last-but-one step
    assert seen[-1] == after[-2][0]
