"""The shared number, int and flag checks: one wording, bools and non-finite values refused."""

import math

import pytest

from gradwise import _validate as check
from gradwise.errors import ConfigError


@pytest.mark.parametrize("value", [True, "1", math.nan, math.inf, None])
def test_number_refuses_non_numbers(value):
    with pytest.raises(ConfigError, match=r"o: f must be a number >= 0, got"):
        check.number("o", "f", value, low=0.0)


def test_number_bounds_and_optional():
    assert check.number("o", "f", 1, low=0.0, high=1.0) == 1.0
    with pytest.raises(ConfigError, match=r"must be a number in \(0, 1\), got 1"):
        check.number("o", "f", 1, low=0.0, high=1.0, low_open=True, high_open=True)
    assert check.number("o", "f", None, optional=True) is None
    with pytest.raises(ConfigError, match="must be a number > 0 or None, got -1"):
        check.number("o", "f", -1, low=0.0, low_open=True, optional=True)


def test_integer_and_flag():
    assert check.integer("o", "n", 2, minimum=1) == 2
    for bad in (True, 2.0, 0):
        with pytest.raises(ConfigError, match="o: n must be an int >= 1"):
            check.integer("o", "n", bad, minimum=1)
    assert check.flag("o", "b", False) is False
    with pytest.raises(ConfigError, match="o: b must be true or false, got 'yes'"):
        check.flag("o", "b", "yes")
