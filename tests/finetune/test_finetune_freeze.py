"""freeze / unfreeze: no gradient, no optimizer state, no weight decay, batch-norm modes."""

import copy

import pytest
import torch
from torch import nn

from gradwise.errors import ConfigError
from gradwise.finetune import count_trainable, freeze, is_bn_eval, layer_groups, unfreeze
from gradwise.nn import MLP
from gradwise.optim import adamw, sgd


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _train_steps(model, opt, steps=5):
    torch.manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=False)  # keep zero grads around, as many loops do
        loss.backward()
        opt.step()


OPTIMIZERS = {
    "torch_adamw": lambda m: torch.optim.AdamW(m.parameters(), lr=0.1, weight_decay=0.5),
    "torch_sgd_wd": lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=0.5),
    "gradwise_adamw_all": lambda m: adamw(m.named_parameters(), lr=0.1, weight_decay=0.5, decay_mask="all"),
    "gradwise_sgdw": lambda m: sgd(m.named_parameters(), lr=0.1, momentum=0.9, weight_decay=0.5,
                                   decoupled=True, decay_mask="all"),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_frozen_parameters_are_bit_identical_under_weight_decay(name):
    torch.manual_seed(0)
    net = MLP(6, [8, 8], 3, batchnorm=True)
    opt = OPTIMIZERS[name](net)
    _train_steps(net, opt, steps=2)  # frozen params have grads and optimizer state from before
    frozen = freeze(net, ["block0", "block1"])
    before = _snapshot(net)
    _train_steps(net, opt, steps=5)
    after = _snapshot(net)
    for n in frozen:
        assert torch.equal(before[n], after[n]), n
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert all(net.get_parameter(n).grad is None for n in frozen)


def test_frozen_from_the_start_gets_no_optimizer_state():
    torch.manual_seed(0)
    net = MLP(6, [8], 3)
    freeze(net, "block0")
    opt = torch.optim.AdamW(net.parameters(), lr=0.1, weight_decay=0.5)
    _train_steps(net, opt)
    assert len(opt.state[net.block0.linear.weight]) == 0
    assert len(opt.state[net.head.weight]) > 0


def test_freeze_clears_a_stale_gradient():
    net = nn.Linear(3, 1)
    net(torch.ones(2, 3)).sum().backward()
    assert net.weight.grad is not None
    freeze(net)
    assert net.weight.grad is None and not net.weight.requires_grad
    # a plain SGD step without weight decay would otherwise apply the stale grad again
    w = net.weight.detach().clone()
    torch.optim.SGD(net.parameters(), lr=1.0).step()
    assert torch.equal(net.weight, w)


def test_patterns_return_names_and_unknown_pattern_suggests():
    net = MLP(4, [8, 8], 2)
    assert freeze(net, "block*") == [
        "block0.linear.weight", "block0.linear.bias", "block1.linear.weight", "block1.linear.bias",
    ]  # fmt: skip
    assert count_trainable(net) == (8 * 2 + 2, 4 * 8 + 8 + 8 * 8 + 8 + 8 * 2 + 2)
    assert unfreeze(net, "*.bias") == ["block0.linear.bias", "block1.linear.bias", "head.bias"]
    with pytest.raises(ConfigError, match="did you mean 'block1"):
        freeze(net, "blok1")


def test_group_and_list_targets():
    net = MLP(4, [8, 8], 2)
    groups = layer_groups(net)
    freeze(groups[:2])
    assert [n for n, p in net.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    unfreeze(groups[1])
    assert net.block1.linear.weight.requires_grad and not net.block0.linear.weight.requires_grad
    with pytest.raises(TypeError):
        freeze("block0")


def _bn_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))


def test_batchnorm_eval_mode_keeps_statistics_and_outputs():
    net = _bn_net()
    x = torch.randn(32, 4) * 3 + 1
    net.eval()
    reference = net(x)
    freeze(net, "0")  # the Linear and its BatchNorm are one group, but patterns pick "0" only
    assert not is_bn_eval(net[1])
    freeze(layer_groups(net)[0], batchnorm="eval")
    assert is_bn_eval(net[1]) and not net[1].weight.requires_grad
    net.train()
    stats = net[1].running_mean.clone()
    out = net(x)
    assert torch.equal(net[1].running_mean, stats)  # not updated in train mode
    assert torch.allclose(out, reference)  # uses running stats, as in eval
    assert net[1].training  # the module's mode is restored after the forward
    clone = copy.deepcopy(net)
    assert torch.allclose(clone(x), reference)
    unfreeze(layer_groups(net)[0])
    net(x)
    assert not torch.equal(net[1].running_mean, stats)


def test_batchnorm_stats_and_train_modes():
    net = _bn_net()
    groups = layer_groups(net)
    freeze(groups[0], batchnorm="stats")
    stats = net[1].running_mean.clone()
    net.train()
    net(torch.randn(8, 4) + 5)
    assert not torch.equal(net[1].running_mean, stats)
    assert not net[1].weight.requires_grad
    net2 = _bn_net()
    freeze(layer_groups(net2)[0], batchnorm="train")
    assert net2[1].weight.requires_grad and net2[1].bias.requires_grad
    assert not net2[0].weight.requires_grad
    with pytest.raises(ConfigError, match="batchnorm mode"):
        freeze(net2, batchnorm="frozen")
