"""``build``: the YAML ``optimizer:`` section's names and values, with clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradwise import optim as go
from gradwise.errors import ConfigError
from gradwise.regularization import ElasticNet


def _params():
    return nn.Linear(3, 2).parameters()


def test_build_makes_the_named_alias_with_its_options():
    opt = go.build(_params(), "adamw", lr=3e-4, betas=[0.9, 0.95], weight_decay=0.1)
    assert isinstance(opt, torch.optim.Optimizer)
    g = opt.param_groups[0]
    assert (g["lr"], g["betas"], g["weight_decay"]) == (3e-4, (0.9, 0.95), 0.1)
    assert [type(t).__name__ for t in opt.leaves] == ["ScaleByAdam", "AddDecayedWeights", "ScaleByLr"]


def test_build_takes_prox_as_mapping_or_penalty():
    opt = go.build(_params(), "sgd", lr=0.1, prox={"kind": "elastic_net", "lam": 0.01, "alpha": 0.3})
    pen = opt.prox.penalty
    assert isinstance(pen, ElasticNet) and (pen.lam, pen.alpha) == (0.01, 0.3)
    opt = go.build(_params(), "rmsprop", prox=ElasticNet(0.1, 1.0), alpha=0.9)
    assert opt.prox.penalty.l1 == pytest.approx(0.1) and opt.param_groups[0]["alpha"] == 0.9


@pytest.mark.parametrize(
    "name, hyper, match",
    [
        ("adamx", {}, r"unknown optimizer 'adamx' \(did you mean 'adamax'"),
        ("sgd", {"betas": (0.9, 0.99)}, "optimizer 'sgd' has no option 'betas'"),
        ("sgd", {"lr": -0.1}, r"sgd: lr must be >= 0; got -0.1"),
        ("adam", {"betas": (0.9, 1.0)}, r"betas\[1\] must be in \[0, 1\)"),
        ("adam", {"betas": (-0.1, 0.9)}, r"betas\[0\]"),
        ("adam", {"eps": "1e-8"}, "eps must be a number"),
        ("adamw", {"weight_decay": -1}, "weight_decay"),
        ("sgd", {"nesterov": True}, "nesterov needs momentum > 0"),
        ("sgd", {"decoupled": "yes"}, "decoupled must be true or false"),
        ("rmsprop", {"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
        ("adagrad", {"lr_decay": -1}, "lr_decay"),
        ("sgd", {"prox": {"kind": "elastic_net", "lam": 0.1, "alpha": 1.5}}, r"alpha must be in \[0, 1\]"),
        ("sgd", {"prox": {"kind": "l1", "lam": -0.1}}, "lam must be"),
        ("sgd", {"prox": {"kind": "lasso", "lam": 0.1}}, "unknown penalty kind 'lasso'"),
        ("sgd", {"prox": {"kind": "elastic_net", "lam": 0.1}}, "needs alpha"),
        ("sgd", {"prox": {"kind": "l1", "lam": 0.1, "alpha": 0.5}}, "takes no alpha"),
        ("sgd", {"prox": {"lam": 0.1}}, "prox needs kind and lam"),
        ("sgd", {"prox": 0.1}, "prox must be a penalty"),
        ("adam", {"decay_mask": 5}, "decay_mask must be"),
    ],
)
def test_bad_config_values_raise_clear_errors(name, hyper, match):
    with pytest.raises(ConfigError, match=match):
        go.build(_params(), name, **hyper)


def test_config_errors_are_value_errors():
    with pytest.raises(ValueError):
        go.sgd(_params(), lr=float("nan"))


@pytest.mark.parametrize(
    "name, hyper, group_key",
    [
        ("nadam", {"momentum_decay": 6e-3, "decoupled_weight_decay": True}, "momentum_decay"),
        ("radam", {"betas": [0.9, 0.99]}, "betas"),
        ("adamax", {"eps": 1e-7}, "eps"),
        ("adadelta", {"rho": 0.95}, "rho"),
        ("asgd", {"t0": 100}, "t0"),
        ("rprop", {"etas": [0.4, 1.3]}, "etas"),
        ("adafactor", {"d": 1.5}, "d"),
        ("muon", {"ns_steps": 6}, "ns_steps"),
        ("sparse_adam", {"eps": 1e-7}, "eps"),
    ],
)
def test_build_reaches_the_torch_aliases(name, hyper, group_key):
    params = nn.Linear(3, 2, bias=False).parameters() if name == "muon" else _params()
    opt = go.build(params, name, lr=0.01, **hyper)
    value = hyper[group_key]
    assert opt.param_groups[0][group_key] == (tuple(value) if isinstance(value, list) else value)
    with pytest.raises(ConfigError, match=f"optimizer '{name}' has no option 'centered'"):
        go.build(_params(), name, centered=True)


@pytest.mark.parametrize("name", ["lion", "lamb", "lars", "schedule_free_adamw", "schedule_free_sgd"])
def test_build_reaches_the_modern_aliases(name):
    opt = go.build(_params(), name, lr=0.01, weight_decay=0.1)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["weight_decay"] == 0.1
