"""The examples in the docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "gradwise.instruct",
    "gradwise.instruct._attention",
    "gradwise.instruct._base",
    "gradwise.instruct._pretrain",
    "gradwise.instruct._tokenizer",
    "gradwise.instruct._config",
    "gradwise.instruct._data",
    "gradwise.instruct._evaluate",
    "gradwise.instruct._generate",
    "gradwise.instruct._loss",
    "gradwise.instruct._masking",
    "gradwise.instruct._packing",
    "gradwise.instruct._stop",
    "gradwise.instruct._tasks",
    "gradwise.instruct._templates",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
