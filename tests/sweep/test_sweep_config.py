"""The sweep config: strict validation with errors that name the field and the fix."""

import pytest

from gradwise.errors import ConfigError
from gradwise.sweep import ParamSpec, parse_sweep
from gradwise.sweep._config import check_path
from gradwise.sweep._space import Space


def sweep(params, **spec):
    return {"data": {"name": "iris"}, "sweep": {"metric": "val_accuracy", "params": params, **spec}}


GRID = {"optimizer.lr": {"values": [0.01, 0.1]}, "model.activation": {"values": ["relu", "tanh"]}}


def test_defaults_and_inferred_direction():
    cfg = parse_sweep(sweep(GRID, method="grid"))
    assert cfg.name == "sweep"
    assert cfg.sweep.direction == "maximize" and cfg.sweep.total_trials == 4
    assert cfg.sweep.params["optimizer.lr"].type == "categorical"
    loss = parse_sweep({**sweep(GRID, method="grid"), "sweep": {"method": "grid", "params": GRID}})
    assert loss.sweep.metric == "val_loss" and loss.sweep.direction == "minimize"
    # the base keeps only what was written, so optimizer options stay unset
    assert cfg.base() == {"data": {"name": "iris"}}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"data": {"name": "iris"}}, "needs a 'sweep:' section"),
        (sweep(GRID, metirc="val_loss"), "sweep.metirc: unknown field .did you mean 'metric'"),
        (sweep({"optimzer.lr": {"values": [0.1]}}, method="grid"),
         "sweep.params.optimzer.lr: the run config has no field 'optimzer' .did you mean 'optimizer'"),
        (sweep({"optimizer.lrate": {"values": [0.1]}}, method="grid"),
         "optimizer has no field 'lrate'"),
        (sweep({"optimizer.lr.x": {"values": [0.1]}}, method="grid"),
         "optimizer.lr is a value, not a section"),
        (sweep({"name": {"values": ["a", "b"]}}, method="grid"), "'name' is set by the sweep"),
        (sweep({"optimizer.name": {"values": ["adam", "sgdd"]}}, method="grid"),
         r"sweep.params.optimizer.name: value 'sgdd' is not valid: .*did you mean 'sgd'"),
        (sweep({"optimizer.lr": {"low": 1e-4, "high": 1e-1}}, method="grid"),
         "a grid sweep lists 'values' for every parameter; optimizer.lr has a range"),
        (sweep({"optimizer.lr": {"low": 1e-4, "high": 1e-1}}, method="random"),
         "a random sweep needs n_trials"),
        (sweep(GRID, method="grid", n_trials=5), "n_trials .5. exceeds the 4 points"),
        (sweep(GRID, method="grid", metric="test_accuracy"), "the test split is never tuned on"),
        (sweep(GRID, method="grid", metric="accuracy"), "metric must be an epoch-record key"),
        (sweep(GRID, method="grid", metric="val_foo"), "cannot tell whether 'val_foo'"),
        (sweep(GRID, method="bayes"), "sweep.method"),
        (sweep({}, method="grid"), "name at least one parameter"),
        ({**sweep(GRID, method="grid"), "data": {"name": "iris", "val": 0.0}},
         "needs a validation split"),
        (sweep({"optimizer.lr": {"low": 0.0, "high": 1.0, "log": True}}, n_trials=2),
         "a log range needs low > 0"),
        (sweep({"optimizer.lr": {"low": 1.0, "high": 0.1}}, n_trials=2),
         r"low \(1.0\) must be below high \(0.1\)"),
        (sweep({"optimizer.lr": {"low": 1e-3, "high": 0.1, "values": [1]}}, n_trials=2),
         "give either 'values' or a range"),
        (sweep({"model.activation": {"values": ["relu", "relu"]}}, method="grid"),
         "value 'relu' is listed twice"),
        (sweep({"training.epochs": {"type": "int", "low": 1, "high": 2.5}}, n_trials=2),
         "an int parameter needs an integer high"),
        (sweep({"optimizer.lr": {"low": 0.0, "high": 20.0}}, n_trials=2),
         r"optimizer.lr: value 0.0 is not valid: optimizer.lr: a number > 0"),
    ],
)  # fmt: skip
def test_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_sweep(raw)


def test_paths_into_sections_and_mappings():
    check_path("optimizer.prox.lam")  # inside an optional section
    check_path("optimizer")  # a whole section, replaced by each value
    check_path("data.options.n")  # free keys below a mapping field
    check_path("schedule.warmup")


def test_lists_are_stored_as_json_and_decoded():
    cfg = parse_sweep(sweep({"model.hidden": {"values": [[8], [8, 8]]}}, method="grid"))
    space = Space(cfg.sweep)
    assert space.grid() == {"model.hidden": ["[8]", "[8, 8]"]}
    assert space.values_of({"model.hidden": "[8, 8]"}) == {"model.hidden": [8, 8]}


def test_param_spec_types():
    assert ParamSpec(low=1, high=8, type="int").candidates() == [1, 8]
    assert ParamSpec(low=1e-3, high=1.0, log=True).type == "float"
