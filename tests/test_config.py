import pytest
import yaml

from gradwise.config import RunConfig, apply_overrides, dump_config, load_config, parse_config
from gradwise.errors import ConfigError


def test_defaults_and_nested_values():
    cfg = parse_config({"name": "x", "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}})
    assert cfg.optimizer.name == "sgd"
    assert cfg.optimizer.momentum == 0.9
    assert cfg.training.epochs == 20
    assert str(cfg.run_dir) == "runs/x"


def test_unknown_key_suggests_closest_and_lists_allowed():
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"hiden": [8]}})
    msg = str(err.value)
    assert "model.hiden" in msg
    assert "did you mean 'hidden'" in msg
    assert "activation" in msg  # the allowed fields are listed


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match="did you mean 'optimizer'"):
        parse_config({"optimiser": {}})


@pytest.mark.parametrize(
    "raw, field, fragment",
    [
        ({"optimizer": {"lr": -1.0}}, "optimizer.lr", "-1.0"),
        ({"optimizer": {"name": "adamm"}}, "optimizer.name", "did you mean 'adam'"),
        ({"optimizer": {"betas": [0.9, 1.5]}}, "optimizer.betas", "[0, 1)"),
        ({"model": {"dropout": 1.0}}, "model.dropout", "1.0"),
        ({"model": {"hidden": [8, 0]}}, "model.hidden", "positive"),
        ({"training": {"epochs": 0}}, "training.epochs", "0"),
        ({"training": {"precision": "fp8"}}, "training.precision", "'fp8'"),
        ({"optimizer": {"prox": {"kind": "l1", "lam": -0.1}}}, "optimizer.prox.lam", "-0.1"),
        ({"name": "a/b"}, "name", "without '/'"),
    ],
)
def test_bad_values_name_field_and_value(raw, field, fragment):
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert field in str(err.value)
    assert fragment in str(err.value)


def test_overrides_parse_yaml_values():
    raw = apply_overrides({}, ["optimizer.lr=0.01", "model.hidden=[32, 16]", "callbacks.progress=false"])
    cfg = parse_config(raw)
    assert cfg.optimizer.lr == 0.01
    assert cfg.model.hidden == [32, 16]
    assert cfg.callbacks.progress is False


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["optimizer.lr"])


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmodel: [1, 2\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(path)


def test_dump_round_trip(tmp_path):
    cfg = parse_config({"name": "r", "optimizer": {"lr": 0.02}})
    dump_config(cfg, tmp_path / "c.yaml")
    again = RunConfig.model_validate(yaml.safe_load((tmp_path / "c.yaml").read_text()))
    assert again == cfg


def test_divergence_guard_on_by_default_and_can_be_turned_off():
    assert parse_config({}).callbacks.divergence_guard.enabled is True
    off = parse_config({"callbacks": {"divergence_guard": {"enabled": False}}})
    assert off.callbacks.divergence_guard.enabled is False
    with pytest.raises(ConfigError, match="callbacks.divergence_guard.factor"):
        parse_config({"callbacks": {"divergence_guard": {"factor": 2.0}}})
