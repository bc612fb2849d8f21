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


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server for this test session (skips where none is installed)."""
    pg = _postgres()
    why = pg.missing()
    if why is not None:
        pytest.skip(why)
    with pg.postgres_server() as url:
        yield url


@pytest.fixture
def postgres_db(postgres_url, request):
    """A fresh database on the session's server, one per test; its URL."""
    import re

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    return _postgres().new_database(postgres_url, name)


def _postgres():
    """tests/sweep/_postgres.py, loaded by path (the tests import in importlib mode)."""
    import importlib.util
    import sys
    from pathlib import Path

    if "_gradwise_test_postgres" not in sys.modules:
        path = Path(__file__).with_name("_postgres.py")
        spec = importlib.util.spec_from_file_location("_gradwise_test_postgres", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["_gradwise_test_postgres"]
