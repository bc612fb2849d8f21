import math

import pytest
import torch
import torch.nn.functional as F

from gradwise.errors import ConfigError
from gradwise.nn import ACTIVATIONS, activation

X = torch.linspace(-4, 4, 33, dtype=torch.float64)


@pytest.mark.parametrize(
    ("name", "kw", "reference"),
    [
        ("sigmoid", {}, torch.sigmoid),
        ("tanh", {}, torch.tanh),
        ("relu", {}, F.relu),
        ("leaky_relu", {}, lambda x: F.leaky_relu(x, 0.01)),
        ("leaky_relu", {"alpha": 0.2}, lambda x: F.leaky_relu(x, 0.2)),
        ("elu", {}, lambda x: F.elu(x, 1.0)),
        ("elu", {"alpha": 0.5}, lambda x: F.elu(x, 0.5)),
        ("gelu", {}, F.gelu),
        ("gelu", {"approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh")),
        ("silu", {}, F.silu),
        ("softmax", {}, lambda x: F.softmax(x, dim=-1)),
    ],
)
def test_matches_torch_functional(name, kw, reference):
    torch.testing.assert_close(activation(name, **kw)(X), reference(X), rtol=0, atol=0)


def test_registry_names():
    assert ACTIVATIONS == (
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "elu",
        "gelu",
        "silu",
        "softmax",
    )
    assert activation("relu") is not activation("relu")  # a fresh module each call


def _grad(module, x):
    x = torch.tensor(float(x), dtype=torch.float64, requires_grad=True)
    module(x).backward()
    return x.grad.item()


def test_hand_computed_values():
    assert activation("leaky_relu", alpha=0.1)(torch.tensor(-2.0)).item() == pytest.approx(-0.2)
    assert activation("leaky_relu")(torch.tensor(3.0)).item() == 3.0
    assert activation("elu", alpha=2.0)(torch.tensor(-1.0)).item() == pytest.approx(
        2 * (math.exp(-1) - 1)
    )
    # GELU(1) = 1·Φ(1), Φ the standard normal CDF
    assert activation("gelu")(torch.tensor(1.0)).item() == pytest.approx(0.8413447, abs=1e-6)
    assert activation("silu")(torch.tensor(1.0)).item() == pytest.approx(1 / (1 + math.exp(-1)))
    p = activation("softmax")(torch.tensor([0.0, math.log(2.0)]))
    torch.testing.assert_close(p, torch.tensor([1 / 3, 2 / 3]))


def test_hand_computed_derivatives():
    assert _grad(activation("sigmoid"), 0.0) == pytest.approx(0.25)  # σ(1−σ) at 0
    assert _grad(activation("tanh"), 0.0) == pytest.approx(1.0)  # 1 − tanh²
    assert _grad(activation("relu"), -1.0) == 0.0
    assert _grad(activation("relu"), 2.0) == 1.0
    assert _grad(activation("leaky_relu", alpha=0.1), -3.0) == pytest.approx(0.1)
    # ELU'(x) = alpha·e^x for x < 0, 1 for x > 0
    assert _grad(activation("elu", alpha=1.5), -1.0) == pytest.approx(1.5 * math.exp(-1))
    assert _grad(activation("elu"), 2.0) == pytest.approx(1.0)
    # SiLU'(x) = σ(x)·(1 + x·(1 − σ(x)))
    s = 1 / (1 + math.exp(-2.0))
    assert _grad(activation("silu"), 2.0) == pytest.approx(s * (1 + 2.0 * (1 - s)))
    # GELU'(0) = Φ(0) = 1/2
    assert _grad(activation("gelu"), 0.0) == pytest.approx(0.5)


def test_softmax_dim():
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    torch.testing.assert_close(activation("softmax", dim=0)(x).sum(0), torch.ones(2))
    torch.testing.assert_close(activation("softmax")(x).sum(1), torch.ones(2))


def test_unknown_name_suggests_closest():
    with pytest.raises(ConfigError, match=r"unknown activation 'relux' \(did you mean 'relu'\?\)"):
        activation("relux")


def test_unknown_option_is_named():
    with pytest.raises(ConfigError, match=r"'relu' got unknown option\(s\) 'alpha'.*none"):
        activation("relu", alpha=0.1)
    with pytest.raises(ConfigError, match=r"'negative_slope'.*allowed options: alpha"):
        activation("leaky_relu", negative_slope=0.1)


@pytest.mark.parametrize(
    ("name", "kw", "match"),
    [
        ("leaky_relu", {"alpha": "big"}, "alpha must be a number"),
        ("elu", {"alpha": True}, "alpha must be a number"),
        ("elu", {"alpha": -1.0}, "alpha must be > 0"),
        ("gelu", {"approximate": "erf"}, "approximate must be 'none' or 'tanh'"),
        ("softmax", {"dim": 1.5}, "dim must be an int"),
    ],
)
def test_bad_option_values(name, kw, match):
    with pytest.raises(ConfigError, match=match):
        activation(name, **kw)
