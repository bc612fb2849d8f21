"""discriminative_lr: hand-computed rates, parity with torch.optim, schedules keep the ratios."""

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.finetune import discriminative_lr, layer_groups
from gradwise.nn import MLP
from gradwise.optim import adamw
from gradwise.schedules import attach, warmup_cosine


def test_ulmfit_factor_values():
    net = MLP(4, [8, 8, 8], 2)
    groups = discriminative_lr(net, lr=0.01)  # factor 2.6
    assert [g["name"] for g in groups] == ["block0", "block1", "block2", "head"]
    expected = [0.01 / 2.6**3, 0.01 / 2.6**2, 0.01 / 2.6, 0.01]
    assert [g["lr"] for g in groups] == pytest.approx(expected, rel=1e-15)
    assert groups[0]["param_names"] == ["block0.linear.weight", "block0.linear.bias"]
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))


def test_layerwise_decay_list_and_options():
    net = MLP(4, [8, 8], 2)
    lrs = [g["lr"] for g in discriminative_lr(net, lr=1e-3, decay=0.5)]
    assert lrs == pytest.approx([2.5e-4, 5e-4, 1e-3])
    groups = discriminative_lr(net, lr=[1e-4, 2e-4, 3e-4], weight_decay=0.1)
    assert [g["lr"] for g in groups] == [1e-4, 2e-4, 3e-4]
    assert all(g["weight_decay"] == 0.1 for g in groups)
    heads = discriminative_lr(net, lr=1e-3, decay=0.5, head_lr=0.1)
    assert [g["lr"] for g in heads] == pytest.approx([5e-4, 1e-3, 0.1])
    with pytest.raises(ConfigError, match="not both"):
        discriminative_lr(net, lr=[1e-3, 1e-3], head_lr=0.1)
    with pytest.raises(ConfigError, match="3 layer groups"):
        discriminative_lr(net, lr=[1e-3, 1e-3])
    with pytest.raises(ConfigError, match="decay must be in"):
        discriminative_lr(net, lr=1e-3, decay=1.5)
    with pytest.raises(ConfigError, match="factor must be > 0"):
        discriminative_lr(net, lr=1e-3, factor=0)
    with pytest.raises(ConfigError, match="set per group"):
        discriminative_lr(net, lr=1e-3, params=[])


def test_gradwise_adamw_matches_torch_adamw_with_the_groups():
    torch.manual_seed(0)
    ours = MLP(5, [7, 6], 3)
    ref = MLP(5, [7, 6], 3)
    ref.load_state_dict(ours.state_dict())
    opt = adamw(discriminative_lr(ours, lr=0.05, factor=3.0), weight_decay=0.1, decay_mask="all")
    ref_groups = [
        {"params": g["params"], "lr": g["lr"]} for g in discriminative_lr(ref, lr=0.05, factor=3.0)
    ]
    ref_opt = torch.optim.AdamW(ref_groups, weight_decay=0.1)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in ref_opt.param_groups]
    for _ in range(5):
        x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
        for model, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            o.step()
    for (n, a), b in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=n)


def test_a_schedule_scales_every_group_from_its_own_rate():
    net = MLP(4, [8], 2)
    groups = discriminative_lr(layer_groups(net), lr=0.1, factor=4.0)
    opt = torch.optim.SGD(groups)
    sched = attach(opt, warmup_cosine(total_steps=10, warmup=2))
    base = [0.025, 0.1]
    for t in range(1, 6):
        opt.step()
        sched.step()
        m = warmup_cosine(total_steps=10, warmup=2)(t)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([b * m for b in base])
