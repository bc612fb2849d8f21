import numpy as np
import torch

from gradwise._format import format_pairs, format_value


def test_small_values_keep_significant_digits():
    assert format_value(6e-7) == "6e-07"  # .4f would print 0.0000
    assert format_value(0.4545) == "0.4545"  # .4f-then-rounding must not give 0.4550
    assert format_value(0.96666666) == "0.9667"


def test_scalars_and_containers_print_readably():
    assert format_value(np.float64(0.01)) == "0.01"  # not np.float64(0.01)
    assert format_value(torch.tensor(0.5)) == "0.5"
    assert format_value(np.int64(3)) == "3"
    assert format_value(True) == "True"
    assert format_value(float("nan")) == "nan"
    assert format_value({"a": 1, "b": [0.5, "x"]}) == "a=1, b=0.5, x"
    assert format_pairs({"metric": "accuracy", "change": -0.0123456}) == (
        "metric=accuracy  change=-0.01235"
    )
