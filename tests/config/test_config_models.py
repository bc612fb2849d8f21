"""The optimizer and schedule config models come from the registries and round-trip."""

import inspect

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradwise.config import (
    OPTIMIZER_MODELS,
    SCHEDULE_MODELS,
    parse_config,
    schedule_config,
    to_yaml,
)
from gradwise.errors import ConfigError
from gradwise.optim import ALIASES
from gradwise.recipes._setup import build_optimizer
from gradwise.schedules import SCHEDULES, schedule


def test_one_model_per_alias_with_the_alias_arguments_and_defaults():
    assert set(OPTIMIZER_MODELS) == set(ALIASES)
    for name, alias in ALIASES.items():
        params = list(inspect.signature(alias).parameters.values())[1:]
        fields = OPTIMIZER_MODELS[name].model_fields
        assert set(fields) == {"name"} | {p.name for p in params}
        for p in params:
            assert fields[p.name].default == p.default, (name, p.name)
    assert set(SCHEDULE_MODELS) == set(SCHEDULES)


def test_saved_adamw_config_reloads_with_the_weight_decay_that_ran(tmp_path):
    # the repro: a saved adamw config used to hold sgd's momentum and weight_decay 0.0
    cfg = parse_config({"data": {"name": "digits"}, "optimizer": {"name": "adamw", "lr": 0.01}})
    saved = yaml.safe_load(to_yaml(cfg))
    assert saved["optimizer"] == {"name": "adamw", "lr": 0.01}
    again = parse_config(saved)
    opt = build_optimizer(again.optimizer, list(torch.nn.Linear(2, 1).named_parameters()))
    assert opt.param_groups[0]["weight_decay"] == 0.01  # adamw's own default


def test_adagrad_lr_decay_is_settable_from_yaml():
    cfg = parse_config({"optimizer": {"name": "adagrad", "lr": 0.1, "lr_decay": 0.5}})
    model = torch.nn.Linear(2, 1, bias=False)
    ours = build_optimizer(cfg.optimizer, list(model.named_parameters()))
    ref_model = torch.nn.Linear(2, 1, bias=False)
    ref_model.load_state_dict(model.state_dict())
    ref = torch.optim.Adagrad(ref_model.parameters(), lr=0.1, lr_decay=0.5)
    x = torch.randn(8, 2)
    for _ in range(3):
        for m, o in ((model, ours), (ref_model, ref)):
            o.zero_grad()
            m(x).pow(2).mean().backward()
            o.step()
    torch.testing.assert_close(model.weight, ref_model.weight)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"optimizer": {"lr": "fast"}}, "optimizer.lr: a number > 0 or 'auto', got 'fast'"),
        ({"optimizer": {"name": "adam", "momentum": 0.9}}, "optimizer.momentum: unknown field"),
        ({"optimizer": {"name": "sgdd"}}, "optimizer.name: unknown optimizer 'sgdd' (did you mean 'sgd'?)"),
        ({"schedule": {"name": "cosin"}}, "schedule.name: unknown schedule 'cosin' (did you mean 'cosine'?)"),
        ({"schedule": {"name": "step_decay"}}, "schedule.step_size"),
        ({"schedule": {"name": "cosine", "min_factr": 0.1}}, "did you mean 'min_factor'"),
    ],
)
def test_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert message in str(err.value)


# Values each option accepts, by option name (the alias checks the rest).
_OPTION_VALUES = {
    "lr": st.floats(1e-5, 1.0),
    "betas": st.tuples(st.floats(0.0, 0.99), st.floats(0.0, 0.999)),
    "eps": st.floats(1e-10, 1e-6),
    "weight_decay": st.floats(0.0, 0.1),
    "momentum": st.floats(0.0, 0.95),
    "dampening": st.just(0.0),
    "alpha": st.floats(0.5, 0.999),
    "lr_decay": st.floats(0.0, 0.1),
    "initial_accumulator_value": st.floats(0.0, 1.0),
    "decay_mask": st.sampled_from(["auto", "all"]),
    "prox": st.one_of(st.none(), st.builds(lambda lam: {"kind": "l1", "lam": lam}, st.floats(0.0, 0.1))),
    "fused": st.sampled_from([None, False]),
}


@st.composite
def optimizer_configs(draw):
    name = draw(st.sampled_from(sorted(OPTIMIZER_MODELS)))
    out = {"name": name}
    for field, info in OPTIMIZER_MODELS[name].model_fields.items():
        if field == "name" or not draw(st.booleans()):
            continue
        if field in _OPTION_VALUES:
            value = draw(_OPTION_VALUES[field])
            if isinstance(info.default, tuple) != isinstance(value, tuple):
                continue  # the same name with another shape (adafactor's eps pair)
            out[field] = value
        elif isinstance(info.default, bool):
            out[field] = draw(st.booleans())
    if out.get("nesterov") and not out.get("momentum"):
        out["momentum"] = 0.9
    if name.startswith("schedule_free"):  # it interpolates: its momentum (beta1) is in (0, 1)
        if out.get("momentum") == 0.0:
            out["momentum"] = 0.9
        if "betas" in out and out["betas"][0] == 0.0:
            out["betas"] = (0.9, out["betas"][1])
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(optimizer_configs())
def test_optimizer_configs_round_trip(raw):
    cfg = parse_config({"optimizer": raw})
    text = to_yaml(cfg)
    saved = yaml.safe_load(text)["optimizer"]
    expected = {k: (list(v) if isinstance(v, tuple) else v) for k, v in raw.items()}
    if expected.get("prox") is not None:
        expected["prox"] = {"alpha": None, **expected["prox"]}  # a set prox is saved whole
    assert saved == expected
    assert to_yaml(parse_config(yaml.safe_load(text))) == text


_SCHEDULE_EXAMPLES = {
    "constant": st.fixed_dictionaries({}, optional={"factor": st.floats(0.0, 2.0)}),
    "step_decay": st.fixed_dictionaries(
        {"step_size": st.integers(1, 500)}, optional={"gamma": st.floats(0.01, 1.0)}
    ),
    "exponential": st.fixed_dictionaries({"gamma": st.floats(0.5, 1.0)}),
    "cosine": st.fixed_dictionaries(
        {}, optional={"min_factor": st.floats(0.0, 0.5), "total_steps": st.integers(1, 5000)}
    ),
    "linear_warmup": st.fixed_dictionaries(
        {"warmup_steps": st.one_of(st.integers(1, 100), st.floats(0.01, 0.5))},
        optional={"start_factor": st.floats(0.0, 1.0)},
    ),
    "warmup_cosine": st.fixed_dictionaries(
        {"warmup": st.one_of(st.integers(1, 100), st.floats(0.01, 0.5))},
        optional={"min_factor": st.floats(0.0, 0.5)},
    ),
    "one_cycle": st.fixed_dictionaries(
        {}, optional={"pct_start": st.floats(0.1, 0.5), "three_phase": st.booleans()}
    ),
    "slanted_triangular": st.fixed_dictionaries({}, optional={"cut_frac": st.floats(0.05, 0.5)}),
    "inverse_sqrt": st.fixed_dictionaries({"warmup_steps": st.integers(1, 100)}),
    "polynomial": st.fixed_dictionaries(
        {}, optional={"power": st.floats(0.5, 3.0), "end_factor": st.floats(0.0, 0.5)}
    ),
    "linear": st.fixed_dictionaries(
        {}, optional={"start_factor": st.floats(0.5, 1.0), "end_factor": st.floats(0.0, 0.5)}
    ),
    "cyclic": st.fixed_dictionaries(
        {"step_size_up": st.integers(1, 500)},
        optional={"mode": st.sampled_from(["triangular", "triangular2"]),
                  "base_factor": st.floats(0.01, 0.9)},
    ),
    "wsd": st.fixed_dictionaries(
        {"decay": st.integers(1, 100)},
        optional={"decay_type": st.sampled_from(["linear", "cosine", "1-sqrt"]),
                  "min_factor": st.floats(0.0, 0.5)},
    ),
    "sequence": st.just(
        {"schedules": [{"name": "linear_warmup", "warmup_steps": 10}, {"name": "cosine"}], "boundaries": [10]}
    ),
}


def test_every_schedule_has_a_generator():
    assert set(_SCHEDULE_EXAMPLES) == set(SCHEDULES)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(_SCHEDULE_EXAMPLES)).flatmap(
    lambda n: _SCHEDULE_EXAMPLES[n].map(lambda kw: {"name": n, **kw})
))
def test_schedule_configs_round_trip_and_build_the_same_schedule(raw):
    cfg = parse_config({"schedule": raw})
    text = to_yaml(cfg)
    assert yaml.safe_load(text)["schedule"] == raw
    assert to_yaml(parse_config(yaml.safe_load(text))) == text
    name, kw = raw["name"], {k: v for k, v in raw.items() if k != "name"}
    assert cfg.schedule.build(total_steps=1000) == schedule(name, **{"total_steps": 1000, **kw})


def test_schedule_config_keeps_its_own_total_steps():
    cfg = schedule_config(name="cosine", total_steps=50)
    assert cfg.build(total_steps=1000).total_steps == 50
