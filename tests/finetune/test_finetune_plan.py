"""Plans and GradualUnfreezing: transitions at the configured epochs/steps, events, resume."""

import json

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.finetune import GradualUnfreezing, Plan, discriminative_lr, restart_schedule
from gradwise.nn import MLP, multiclass
from gradwise.optim import adamw
from gradwise.schedules import attach, slanted_triangular
from gradwise.train import Callback, Checkpoint, MetricsLogger, Trainer


class Probe(Callback):
    """Record which parameters train in each epoch and at each step."""

    order = 50

    def __init__(self):
        self.epochs, self.steps, self.lrs = {}, {}, {}

    def _trainable(self, state):
        return tuple(n for n, p in state.model.named_parameters() if p.requires_grad)

    def on_epoch_start(self, state):
        self.epochs[state.epoch] = self._trainable(state)

    def on_before_step(self, state):
        self.steps[state.step] = self._trainable(state)
        self.lrs[state.step] = state.lr


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def _fit(callbacks, epochs=5, scheduler=None, model=None, opt=None, **kw):
    torch.manual_seed(0)
    model = model or MLP(6, [8, 8, 8], 3, batchnorm=True)
    opt = opt or adamw(discriminative_lr(model, lr=0.01), weight_decay=0.1, decay_mask="all")
    sched = scheduler(opt) if scheduler else None
    trainer = Trainer(model, opt, multiclass(3), epochs=epochs, batch_size=16, seed=0,
                      callbacks=callbacks, scheduler=sched)
    history = trainer.fit(_data(), **kw)
    return model, history


def test_default_is_ulmfit_head_first_then_one_group_per_epoch():
    probe = Probe()
    _, history = _fit([GradualUnfreezing(), probe], epochs=5)
    def groups(names):
        return sorted({n.split(".")[0] for n in names})
    assert [groups(probe.epochs[e]) for e in range(1, 6)] == [
        ["head"], ["block2", "head"], ["block1", "block2", "head"],
        ["block0", "block1", "block2", "head"], ["block0", "block1", "block2", "head"],
    ]  # fmt: skip
    events = [e for e in history.events if e["kind"] == "unfreeze"]
    assert [(e["epoch"], e["stage"], e["groups"][0]) for e in events] == [
        (1, 1, "head"), (2, 2, "block2"), (3, 3, "block1"), (4, 4, "block0"),
    ]  # fmt: skip


def test_explicit_stages_start_at_the_configured_epochs_and_frozen_stay_identical():
    plan = {"stages": [{"epoch": 1, "train": ["head"]}, {"epoch": 3, "train": ["block2", "head"]},
                       {"epoch": 5, "train": ["all"]}]}
    probe = Probe()
    snaps = {}

    class Snap(Callback):
        def on_epoch_start(self, state):
            snaps[state.epoch] = {n: p.detach().clone() for n, p in state.model.named_parameters()}

    model, history = _fit([GradualUnfreezing(plan=plan), probe, Snap()], epochs=5)
    assert [e["epoch"] for e in history.events if e["kind"] == "unfreeze"] == [1, 3, 5]
    assert all(not n.startswith("block") for n in probe.epochs[2])
    assert any(n.startswith("block2") for n in probe.epochs[3])
    # block0 is frozen in epochs 1-4 (weight decay 0.1 on every parameter): bit-identical
    for name in ("block0.linear.weight", "block0.norm.weight", "block1.norm.bias"):
        assert torch.equal(snaps[1][name], snaps[5][name]), name
    assert not torch.equal(snaps[1]["head.weight"], snaps[2]["head.weight"])
    final = dict(model.named_parameters())
    assert not torch.equal(snaps[5]["block0.linear.weight"], final["block0.linear.weight"])


def test_step_plan_switches_after_the_configured_step():
    plan = Plan([{"step": 0, "train": ["head"]}, {"step": 6, "train": ["top:2"]}], unit="step")
    probe = Probe()
    _, history = _fit([GradualUnfreezing(plan=plan), probe], epochs=3)  # 4 steps per epoch
    assert all(not any(n.startswith("block2") for n in probe.steps[s]) for s in range(6))
    assert all(any(n.startswith("block2") for n in probe.steps[s]) for s in range(6, 12))
    assert [(e["epoch"], e["step"]) for e in history.events] == [(1, 0), (2, 6)]


def test_restart_schedule_stretches_the_schedule_over_each_stage():
    probe = Probe()
    cb = GradualUnfreezing(plan={"stages": [{"epoch": 1, "train": ["head"]},
                                            {"epoch": 2, "train": ["all"]}]}, restart_schedule=True)
    _fit([cb, probe], epochs=3, scheduler=lambda o: attach(o, slanted_triangular(total_steps=99, cut_frac=0.25)))
    # stage 1: epoch 1 = 4 steps; stage 2: epochs 2-3 = 8 steps; each from step 0 of its schedule
    s1 = slanted_triangular(total_steps=4, cut_frac=0.25)
    s2 = slanted_triangular(total_steps=8, cut_frac=0.25)
    head = [probe.lrs[t][-1] for t in range(12)]
    expected = [0.01 * s1(t) for t in range(4)] + [0.01 * s2(t) for t in range(8)]
    assert head == pytest.approx(expected)


def test_restart_needs_a_closed_form_scheduler():
    cb = GradualUnfreezing(restart_schedule=True)
    with pytest.raises(ConfigError, match="schedules.attach"):
        _fit([cb], epochs=1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ConfigError, match="schedules.attach"):
        restart_schedule(torch.optim.lr_scheduler.StepLR(opt, 2))
    lam = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (t + 1))
    for _ in range(3):
        opt.step()
        lam.step()
    assert restart_schedule(lam) == [1.0] and lam.last_epoch == 0


def test_events_reach_metrics_jsonl(tmp_path):
    _fit([GradualUnfreezing(every=2), MetricsLogger(tmp_path)], epochs=3)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    events = [r for r in records if r["type"] == "event"]
    assert [(e["kind"], e["epoch"], e["train"]) for e in events] == [
        ("unfreeze", 1, ["top:1"]), ("unfreeze", 3, ["top:2"]),
    ]  # fmt: skip
    assert "stage 2/4 from epoch 3" in events[1]["message"]


def test_resume_restores_the_stage_without_a_new_event(tmp_path):
    full, _ = _fit([GradualUnfreezing()], epochs=4)
    _fit([GradualUnfreezing(), Checkpoint(tmp_path, every_epoch=True, keep=5)], epochs=2)
    model, history = _fit([GradualUnfreezing()], epochs=4, resume=tmp_path)
    for (n, a), b in zip(model.named_parameters(), full.parameters()):
        assert torch.equal(a, b), n
    assert [e["epoch"] for e in history.events if e["kind"] == "unfreeze"] == [1, 2, 3, 4]


def test_lora_adapters_first_then_top_groups():
    from gradwise.lora import LoRAConfig, inject

    torch.manual_seed(0)
    model = MLP(6, [8, 8], 3)
    inject(model, LoRAConfig(r=2, target_modules=["linear"]))
    probe = Probe()
    plan = {"stages": [{"epoch": 1, "train": ["lora", "head"]}, {"epoch": 2, "train": ["lora", "top:2"]}]}
    _fit([GradualUnfreezing(plan=plan), probe], epochs=2, model=model,
         opt=torch.optim.AdamW(model.parameters(), lr=0.01))
    assert sorted(probe.epochs[1]) == sorted([
        "block0.linear.lora_A.default.weight", "block0.linear.lora_B.default.weight",
        "block1.linear.lora_A.default.weight", "block1.linear.lora_B.default.weight",
        "head.weight", "head.bias",
    ])  # fmt: skip
    assert "block1.linear.base_layer.weight" in probe.epochs[2]
    assert "block0.linear.base_layer.weight" not in probe.epochs[2]


def test_plan_validation():
    with pytest.raises(ConfigError, match="first stage must start at epoch 1"):
        Plan([{"epoch": 2, "train": ["head"]}])
    with pytest.raises(ConfigError, match="increasing order"):
        Plan([{"epoch": 1, "train": ["head"]}, {"epoch": 1, "train": ["all"]}])
    with pytest.raises(ConfigError, match="set unit: step"):
        Plan([{"step": 0, "train": ["head"]}])
    with pytest.raises(ConfigError, match="unknown plan kind"):
        Plan.from_dict({"kind": "ulmfit"})
    with pytest.raises(ConfigError, match="does not apply"):
        Plan.from_dict({"kind": "full", "every": 2})
    assert [s.start for s in Plan.from_dict({"kind": "gradual", "every": 3, "max_groups": 2}).expand(5)] == [1, 4]
    assert Plan.from_dict({"kind": "head_only", "unit": "step"}).stages[0].start == 0
    with pytest.raises(ConfigError, match="did you mean 'block1'"):
        _fit([GradualUnfreezing(plan={"stages": [{"epoch": 1, "train": ["blok1"]}]})], epochs=1)
    with pytest.raises(ConfigError, match="has 4 layer groups"):
        _fit([GradualUnfreezing(plan={"stages": [{"epoch": 1, "train": ["top:5"]}]})], epochs=1)
    with pytest.raises(ConfigError, match="no LoRA adapter"):
        _fit([GradualUnfreezing(plan={"stages": [{"epoch": 1, "train": ["lora"]}]})], epochs=1)
