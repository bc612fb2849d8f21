"""`plot_schedule` output, and the docstring examples of the package."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import matplotlib.image
import pytest

import gradwise.schedules
from gradwise.errors import ConfigError
from gradwise.schedules import exponential, one_cycle, plot_schedule


def test_plot_schedule_writes_a_png_of_the_curve(tmp_path):
    path = plot_schedule(one_cycle(500), None, tmp_path / "one_cycle.png", base_lr=0.1)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (400, 600)
    # The curve is drawn in matplotlib's default blue, so some pixels are that colour.
    blue = (abs(image[..., 0] - 0.12) < 0.05) & (abs(image[..., 2] - 0.71) < 0.05)
    assert blue.sum() > 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one_cycle.png"]


def test_plot_schedule_needs_a_horizon():
    with pytest.raises(ConfigError, match="give total_steps"):
        plot_schedule(exponential(0.9), None, "unused.png")


def test_docstring_examples_run():
    names = vars(gradwise.schedules)
    failed = attempted = 0
    for info in pkgutil.iter_modules(gradwise.schedules.__path__, "gradwise.schedules."):
        module = importlib.import_module(info.name)
        result = doctest.testmod(module, extraglobs=names)
        failed, attempted = failed + result.failed, attempted + result.attempted
    result = doctest.testmod(gradwise.schedules)
    assert failed + result.failed == 0
    assert attempted + result.attempted >= 30
