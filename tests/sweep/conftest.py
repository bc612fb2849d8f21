import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny models: intra-op threads only add spin-wait on a busy machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_trial_reports(monkeypatch):
    """Skip each trial's own report.html (plots cost more than the tiny trainings here)."""
    import gradwise.recipes.train as recipe

    monkeypatch.setattr(recipe, "write_report", lambda run_dir, **kw: run_dir / "report.html")


@pytest.fixture
def base(tmp_path):
    """``base(**fields)``: a tiny run config on iris, 2 epochs of an 8-unit MLP."""

    def make(**extra):
        return _base(tmp_path, **extra)

    return make


def _base(tmp_path, **extra):
    raw = {
        "name": "sw",
        "runs_dir": str(tmp_path / "runs"),
        "data": {"name": "iris", "seed": 0},
        "model": {"hidden": [8]},
        "training": {"epochs": 2, "batch_size": 32, "seed": 0, "device": "cpu"},
    }
    raw.update(extra)
    return raw
