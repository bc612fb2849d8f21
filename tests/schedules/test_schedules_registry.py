"""`schedule(name, total_steps, **kw)`: the config form of every schedule."""

from __future__ import annotations

import pytest
import yaml

from gradwise.errors import ConfigError
from gradwise.schedules import (
    SCHEDULES,
    cosine,
    linear_warmup,
    one_cycle,
    schedule,
    sequence,
    step_decay,
    warmup_cosine,
)


def test_registry_lists_every_schedule():
    assert set(SCHEDULES) == {
        "constant",
        "step_decay",
        "exponential",
        "cosine",
        "linear_warmup",
        "warmup_cosine",
        "one_cycle",
        "slanted_triangular",
        "inverse_sqrt",
        "sequence",
        "polynomial",
        "linear",
        "cyclic",
        "wsd",
    }


def test_yaml_config_with_fraction_of_total_steps():
    config = yaml.safe_load("schedule: {name: warmup_cosine, warmup: 0.05, min_factor: 0.1}")
    s = schedule(**config["schedule"], total_steps=2000)
    assert s == warmup_cosine(2000, warmup=100, min_factor=0.1)


def test_ints_are_absolute_steps_and_integral_floats_are_accepted():
    assert schedule("warmup_cosine", total_steps=2000, warmup=30) == warmup_cosine(2000, 30)
    assert schedule("step_decay", step_size=30.0) == step_decay(30)
    assert schedule("step_decay", total_steps=1000, step_size=0.25, gamma=0.5) == step_decay(
        250, 0.5
    )


def test_fraction_rounds_to_nearest_step_and_at_least_one():
    assert schedule("linear_warmup", total_steps=999, warmup_steps=0.1).warmup_steps == 100
    assert schedule("linear_warmup", total_steps=10, warmup_steps=0.01).warmup_steps == 1


def test_total_steps_is_passed_only_where_a_schedule_takes_it():
    assert schedule("cosine", total_steps=500, cycle_steps=0.1) == cosine(500, cycle_steps=50)
    assert schedule("one_cycle", total_steps=500) == one_cycle(500)
    # A schedule's own total_steps wins over the run's.
    assert schedule("cosine", total_steps=500, **{"min_factor": 0.5}).total_steps == 500


def test_sequence_from_nested_configs_gets_segment_lengths():
    s = schedule(
        "sequence",
        total_steps=1000,
        schedules=[{"name": "linear_warmup", "warmup_steps": 1.0 * 100}, {"name": "cosine"}],
        boundaries=[0.1],
    )
    assert s == sequence([linear_warmup(100), cosine(900)], [100])
    assert s.total_steps == 1000


def test_fraction_without_total_steps_is_a_clear_error():
    with pytest.raises(ConfigError, match="warmup=0.05 is a fraction .* total_steps is not known"):
        schedule("warmup_cosine", warmup=0.05)


def test_missing_argument_names_it():
    with pytest.raises(ConfigError, match="needs total_steps"):
        schedule("one_cycle")
    with pytest.raises(ConfigError, match="needs step_size"):
        schedule("step_decay", gamma=0.5)


def test_unknown_name_and_argument_suggest_the_closest():
    with pytest.raises(ConfigError, match=r"unknown schedule 'cosin' \(did you mean 'cosine'\?\)"):
        schedule("cosin", total_steps=10)
    with pytest.raises(
        ConfigError, match=r"unknown warmup_cosine argument 'warmpu' \(did you mean 'warmup'\?\)"
    ):
        schedule("warmup_cosine", total_steps=100, warmpu=10)


@pytest.mark.parametrize("bad", [-0.5, 1.5, "10", True, None])
def test_bad_step_values_are_rejected(bad):
    with pytest.raises(ConfigError, match="step_size"):
        schedule("step_decay", total_steps=100, step_size=bad)
