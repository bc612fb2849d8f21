"""The thread rule: one thread for light steps or busy cores, the free cores otherwise."""

from __future__ import annotations

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.train import Trainer, _threads, auto_threads, choose_threads
from gradwise.train._threads import LIGHT, positions, step_work

DIGITS_MLP = 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10  # 64-128-64-10: 17,226 parameters
SFT_LLAMA = 828_544  # the tiny Llama of benchmarks/bench_sft.py


@pytest.mark.parametrize(
    ("work", "cores", "load", "expected"),
    [
        (DIGITS_MLP * 64, 16, 0.0, 1),  # the digits MLP at batch 64: one thread, idle 16 cores
        (DIGITS_MLP * 64, 2, 9.0, 1),  # ... and on a busy machine
        (SFT_LLAMA * 8 * 512, 2, 0.4, 2),  # the SFT Llama, 8 x 512 tokens: both idle cores
        (SFT_LLAMA * 8 * 512, 2, 11.0, 1),  # ... but one when the cores are busy
        (SFT_LLAMA * 64, 2, 0.0, 1),  # the same parameters on rows: light
        (LIGHT - 1, 2, None, 1),
        (LIGHT, 2, 0.0, 2),  # LIGHT and up: every free core
        (22_700_000 * 64, 16, 3.5, 13),  # MiniLM on a host with 3.5 busy cores
        (22_700_000 * 64, 2, 1.9, 1),
        (22_700_000 * 64, 8, None, 8),  # load unknown (Windows): all cores
        (22_700_000 * 64, 4, -1.0, 4),
        (22_700_000 * 64, 0, 0.0, 1),
    ],
)
def test_choose_threads(work, cores, load, expected):
    assert choose_threads(work, cores, load) == expected


def test_step_work_counts_parameters_times_positions():
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.Linear(128, 64), torch.nn.Linear(64, 10))
    assert step_work(model, torch.zeros(64, 64)) == DIGITS_MLP * 64  # rows: one position each
    ids = torch.zeros(8, 512, dtype=torch.long)
    assert positions(ids) == 4096  # token ids: every token
    assert positions(({"input_ids": ids, "attention_mask": torch.ones(8, 1, 512, 512)},)) == 4096
    assert positions(torch.zeros(4, 16, 32)) == 64  # (batch, length, features)
    assert positions(torch.zeros(10)) == 10 and positions(None) == 1
    assert step_work(model) == DIGITS_MLP


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


def _counting(seen):
    from gradwise.train import Callback

    class Threads(Callback):
        def on_step_end(self, state):
            seen.append(torch.get_num_threads())

    return Threads()


def test_token_batches_from_a_loader_get_the_free_cores(clean_env):
    """A 0.83M-parameter model on 8 x 512 tokens is heavy work; on rows of 64 it is light."""
    clean_env.setattr(_threads, "_cores", lambda: 2)
    clean_env.setattr(_threads, "_load", lambda: 0.0)
    torch.set_num_threads(1)
    clean_env.setattr(_threads, "_AT_IMPORT", 1)

    class Lm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(384, 128)
            self.rest = torch.nn.Parameter(torch.zeros(SFT_LLAMA - 384 * 128))

        def forward(self, ids):
            return self.emb(ids)[..., :1].sum() + self.rest[:1].sum()

    ids = torch.randint(0, 384, (16, 512))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ids, torch.zeros(16)),
                                         batch_size=8, shuffle=True)  # fmt: skip
    seen = []
    model = Lm()
    assert sum(p.numel() for p in model.parameters()) == SFT_LLAMA
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda out, y: out,
                      epochs=1, callbacks=[_counting(seen)], seed=0)  # fmt: skip
    trainer.fit(loader)
    assert seen == [2, 2]
    assert torch.get_num_threads() == 1
    rows = torch.randn(64, 128)
    with auto_threads(model, rows) as n:
        assert n == 1


def test_threads_argument_and_config_field_win_over_the_rule_and_the_env(clean_env):
    from gradwise.config import TrainingConfig

    clean_env.setattr(_threads, "_cores", lambda: 4)
    clean_env.setattr(_threads, "_load", lambda: 0.0)
    clean_env.setenv("GRADWISE_THREADS", "3")
    torch.set_num_threads(1)
    clean_env.setattr(_threads, "_AT_IMPORT", 1)
    model = torch.nn.Linear(4, 1)
    X, y = torch.randn(32, 4), torch.randn(32, 1)
    for threads, expected in ((2, 2), ("auto", 3)):  # "auto": the env var, then the rule
        seen = []
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.MSELoss(), epochs=1,
                batch_size=16, callbacks=[_counting(seen)], threads=threads).fit((X, y))  # fmt: skip
        assert seen == [expected, expected]
    assert TrainingConfig(threads=2).threads == 2 and TrainingConfig().threads == "auto"
    assert TrainingConfig(threads="2").threads == 2
    for bad in (0, -1, "many", 1.5, True):
        with pytest.raises(ConfigError, match=r"Trainer: threads must be a whole number >= 1 or 'auto', got"):
            Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.MSELoss(), threads=bad)
        with pytest.raises(ValueError, match=r"a whole number >= 1 or 'auto'"):
            TrainingConfig(threads=bad)


def test_drawing_the_first_batch_leaves_the_loader_as_it_was():
    from gradwise.train._data import LoaderBatches
    from gradwise.train._threads import first_inputs

    data = torch.utils.data.TensorDataset(torch.arange(40.0).view(20, 2), torch.zeros(20))
    gen = torch.Generator().manual_seed(3)
    sampler = torch.utils.data.RandomSampler(data, generator=gen)
    loader = torch.utils.data.DataLoader(data, batch_size=4, sampler=sampler)
    order = [b[0][:, 0].tolist() for b in loader]
    gen.manual_seed(3)
    rng = torch.get_rng_state()
    first = first_inputs(LoaderBatches(loader, torch.device("cpu"), None, "train"))
    assert torch.equal(torch.get_rng_state(), rng)
    assert first[0][:, 0].tolist() == order[0]
    assert [b[0][:, 0].tolist() for b in loader] == order  # the sampler's generator put back

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from ((torch.zeros(2), torch.zeros(())) for _ in range(3))

    stream = torch.utils.data.DataLoader(Stream(), batch_size=2)
    assert first_inputs(LoaderBatches(stream, torch.device("cpu"), None, "train")) is None
