"""The thread rule: one thread for small models or busy cores, the free cores otherwise."""

from __future__ import annotations

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.train import _threads, auto_threads, choose_threads


@pytest.mark.parametrize(
    ("n_params", "cores", "load", "expected"),
    [
        (17_000, 16, 0.0, 1),  # the digits MLP: one thread even on an idle 16-core host
        (999_999, 2, None, 1),
        (1_000_000, 2, 0.0, 2),  # 1M and up: every free core
        (22_700_000, 16, 3.5, 13),  # MiniLM on a host with 3.5 busy cores
        (22_700_000, 2, 1.9, 1),
        (22_700_000, 2, 12.4, 1),  # the cores are busy: one thread
        (22_700_000, 8, None, 8),  # load unknown (Windows): all cores
        (22_700_000, 4, -1.0, 4),
        (22_700_000, 0, 0.0, 1),
    ],
)
def test_choose_threads(n_params, cores, load, expected):
    assert choose_threads(n_params, cores, load) == expected


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("GRADWISE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    monkeypatch.setattr(_threads, "_AT_IMPORT", before)  # as if nobody set threads yet
    yield monkeypatch
    torch.set_num_threads(before)


def test_small_model_trains_on_one_thread_and_the_count_is_restored(clean_env):
    clean_env.setattr(_threads, "_cores", lambda: 4)
    clean_env.setattr(_threads, "_load", lambda: 0.0)
    before = torch.get_num_threads()
    with auto_threads(torch.nn.Linear(8, 2)) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_gradwise_threads_overrides_the_rule(clean_env):
    clean_env.setenv("GRADWISE_THREADS", "2")
    with auto_threads(torch.nn.Linear(8, 2)) as n:
        assert n == 2 and torch.get_num_threads() == 2
    clean_env.setenv("GRADWISE_THREADS", "many")
    with pytest.raises(ConfigError, match="GRADWISE_THREADS: a whole number >= 1 or 'auto', got 'many'"):
        with auto_threads(torch.nn.Linear(8, 2)):
            pass


def test_the_users_own_setting_wins(clean_env):
    clean_env.setattr(_threads, "_cores", lambda: 4)
    clean_env.setattr(_threads, "_load", lambda: 0.0)
    clean_env.setattr(_threads, "_AT_IMPORT", 3)  # torch.set_num_threads(2) since import
    torch.set_num_threads(2)
    with auto_threads(torch.nn.Linear(8, 2)) as n:
        assert n == 2 and torch.get_num_threads() == 2
    clean_env.setattr(_threads, "_AT_IMPORT", 2)
    clean_env.setenv("OMP_NUM_THREADS", "2")
    with auto_threads(torch.nn.Linear(8, 2)) as n:
        assert n == 2


def test_trainer_fit_runs_under_the_rule(clean_env):
    from gradwise.train import Callback, Trainer

    clean_env.setattr(_threads, "_cores", lambda: 2)
    clean_env.setattr(_threads, "_load", lambda: 0.0)
    torch.set_num_threads(2)
    clean_env.setattr(_threads, "_AT_IMPORT", 2)
    seen = []

    class Threads(Callback):
        def on_step_end(self, state):
            seen.append(torch.get_num_threads())

    model = torch.nn.Linear(4, 1)
    X, y = torch.randn(32, 4), torch.randn(32, 1)
    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.MSELoss(),
            epochs=1, batch_size=16, callbacks=[Threads()]).fit((X, y))  # fmt: skip
    assert seen == [1, 1]
    assert torch.get_num_threads() == 2
