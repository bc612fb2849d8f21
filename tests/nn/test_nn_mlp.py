import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradwise.errors import ConfigError
from gradwise.nn import MLP


def test_structure_and_names():
    net = MLP(4, [16, 8], 3)
    assert isinstance(net, nn.Sequential)
    assert [n for n, _ in net.named_children()] == ["block0", "block1", "head"]
    assert [n for n, _ in net.blocks] == ["block0", "block1", "head"]
    assert [type(m) for m in net.block0] == [nn.Linear, nn.ReLU]
    assert isinstance(net.head, nn.Linear) and net[-1] is net.head
    assert (net.head.in_features, net.head.out_features) == (8, 3)
    # 4·16+16 + 16·8+8 + 8·3+3
    assert sum(p.numel() for p in net.parameters()) == 243
    assert list(net.state_dict()) == [
        "block0.linear.weight",
        "block0.linear.bias",
        "block1.linear.weight",
        "block1.linear.bias",
        "head.weight",
        "head.bias",
    ]


def test_batchnorm_dropout_order_and_no_bias_before_norm():
    net = MLP(5, [7], 2, activation="tanh", dropout=0.25, batchnorm=True)
    assert [n for n, _ in net.block0.named_children()] == ["linear", "norm", "act", "dropout"]
    assert [type(m) for m in net.block0] == [nn.Linear, nn.BatchNorm1d, nn.Tanh, nn.Dropout]
    assert net.block0.linear.bias is None
    assert net.block0.dropout.p == 0.25
    assert net.head.bias is not None


def test_forward_matches_hand_written_network():
    torch.manual_seed(0)
    net = MLP(3, [6, 5], 2, activation="leaky_relu", alpha=0.2)
    x = torch.randn(10, 3)
    h = F.leaky_relu(x @ net.block0.linear.weight.T + net.block0.linear.bias, 0.2)
    h = F.leaky_relu(h @ net.block1.linear.weight.T + net.block1.linear.bias, 0.2)
    expected = h @ net.head.weight.T + net.head.bias  # logits, no output activation
    torch.testing.assert_close(net(x), expected)
    assert net.block0.act.negative_slope == 0.2


def test_batchnorm_forward_in_train_and_eval():
    torch.manual_seed(0)
    net = MLP(3, [4], 1, batchnorm=True)
    x = torch.randn(32, 3) * 5 + 2
    z = net.block0.linear(x)
    zn = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(net(x), net.head(F.relu(zn)), atol=1e-5, rtol=1e-5)
    # one training step moved the running stats from (0, 1) by momentum 0.1
    mean = 0.1 * z.mean(0)
    var = 0.9 + 0.1 * z.var(0, unbiased=True)
    net.eval()
    zn = (z - mean) / torch.sqrt(var + 1e-5)
    torch.testing.assert_close(net(x), net.head(F.relu(zn)), atol=1e-5, rtol=1e-5)


def test_dropout_active_only_in_train_mode():
    torch.manual_seed(0)
    net = MLP(8, [2000], 1, dropout=0.5)
    x = torch.randn(1, 8)
    hidden = net[:-1]
    kept = (hidden(x) != 0).float().mean().item()
    relu_kept = (F.relu(net.block0.linear(x)) != 0).float().mean().item()
    assert kept == pytest.approx(relu_kept / 2, abs=0.05)
    net.eval()
    torch.testing.assert_close(hidden(x), F.relu(net.block0.linear(x)))


def test_linear_model_when_no_hidden_layers():
    net = MLP(4, [], 2)
    assert [n for n, _ in net.named_children()] == ["head"]
    assert net.blocks == (("head", net.head),)


def test_indexing_and_slicing():
    net = MLP(4, [16, 8], 3)
    assert len(net) == 3
    assert net[0] is net.block0
    features = net[:-1]
    assert type(features) is nn.Sequential
    assert [n for n, _ in features.named_children()] == ["block0", "block1"]
    assert features(torch.randn(2, 4)).shape == (2, 8)
    clone = copy.deepcopy(net)
    x = torch.randn(2, 4)
    torch.testing.assert_close(clone(x), net(x))


@pytest.mark.parametrize(
    ("args", "kw", "match"),
    [
        ((0, [4], 2), {}, r"in_features must be a positive int, got 0"),
        (("4", [4], 2), {}, r"in_features must be a positive int, got '4'"),
        ((True, [4], 2), {}, r"in_features must be a positive int, got True"),
        ((4, [4], -1), {}, r"out_features must be a positive int, got -1"),
        ((4, 16, 2), {}, r"hidden must be a sequence of ints, got 16"),
        ((4, "16", 2), {}, r"hidden must be a sequence of ints, got '16'"),
        ((4, [16, 0], 2), {}, r"hidden\[1\] must be a positive int, got 0"),
        ((4, [16], 2), {"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ((4, [16], 2), {"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
        ((4, [16], 2), {"dropout": "0.1"}, r"dropout must be a number"),
        ((4, [16], 2), {"batchnorm": "yes"}, r"batchnorm must be True or False"),
        ((4, [16], 2), {"activation": "rleu"}, r"unknown activation 'rleu'"),
        ((4, [16], 2), {"alpha": 0.1}, r"'relu' got unknown option\(s\) 'alpha'"),
    ],
)
def test_validation_errors(args, kw, match):
    with pytest.raises(ConfigError, match=match):
        MLP(*args, **kw)
