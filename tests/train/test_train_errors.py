"""Mistakes a user can make fail before any training step, with a message that names them."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gradwise.errors import ConfigError, DataError, HeadError
from gradwise.nn import binary, multiclass
from gradwise.train import Callback, Trainer


def make(loss=None, model=None, **kw):
    model = model or nn.Linear(4, 3)
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss or multiclass(3), **kw)


class NoStep(Callback):
    """Fails the test if any batch runs."""

    def on_batch_start(self, state):
        raise AssertionError("training started")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"grad_accum": 0}, "grad_accum must be an int >= 1, got 0"),
        ({"grad_accum": 1.5}, "grad_accum must be an int >= 1, got 1.5"),
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"batch_size": True}, "batch_size must be an int >= 1, got True"),
        ({"clip_grad_norm": -1.0}, "clip_grad_norm must be a number > 0 or None, got -1.0"),
        ({"precision": "bf61"}, "unknown precision 'bf61' \\(did you mean 'bf16'\\?\\); allowed"),
        ({"precision": "fp16"}, "allowed: bf16, fp32"),
        ({"scheduler_per": "batch"}, "unknown scheduler_per 'batch'"),
        ({"seed": "0"}, "seed must be an int or None"),
        ({"device": "tpu"}, "device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'tpu'"),
        ({"metrics": ["acc"]}, "unknown metric 'acc'"),
    ],
)
def test_bad_options_raise_config_error(kw, match):
    with pytest.raises(ConfigError, match=match):
        make(**kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda():
    with pytest.raises(ConfigError, match="training.device in a config.*CUDA is not available on this machine; use 'auto'"):
        make(device="cuda")


def test_bad_types():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        Trainer("model", None, nn.MSELoss())
    model = nn.Linear(2, 1)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer or a factory"):
        Trainer(model, 0.1, nn.MSELoss())
    with pytest.raises(TypeError, match="factory returned list"):
        Trainer(model, lambda p: list(p), nn.MSELoss())
    with pytest.raises(TypeError, match="loss must be a gradwise head or a callable"):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), "mse")
    other = nn.Linear(2, 1)
    with pytest.raises(ConfigError, match="optimizer holds none of the model's parameters"):
        Trainer(model, torch.optim.SGD(other.parameters(), lr=0.1), nn.MSELoss())
    with pytest.raises(TypeError, match="scheduler must be a torch LR scheduler"):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss(), scheduler=3)


def test_head_checks_run_before_any_step():
    X = torch.randn(20, 4)
    with pytest.raises(HeadError, match=r"train targets: multiclass head: class index 3 at row 5"):
        y = torch.zeros(20, dtype=torch.long)
        y[5] = 3
        make(callbacks=[NoStep()]).fit((X, y))
    with pytest.raises(HeadError, match="last Linear .* out_features=3, but the binary head"):
        make(loss=binary(), callbacks=[NoStep()]).fit((X, torch.zeros(20)))
    with pytest.raises(HeadError, match="ends in Softmax"):
        model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))
        make(model=model, callbacks=[NoStep()]).fit((X, torch.zeros(20, dtype=torch.long)))
    # A DataLoader: the first batch is checked.
    y = torch.full((20,), 0.5)
    with pytest.raises(HeadError, match="train targets: float targets for a classifier"):
        make(callbacks=[NoStep()]).fit(DataLoader(TensorDataset(X, y), batch_size=4))
    with pytest.raises(HeadError, match="val targets: multiclass head: class index -1"):
        good = torch.zeros(20, dtype=torch.long)
        make(callbacks=[NoStep()]).fit((X, good), val=(X, good - 1))


def test_bad_data():
    X = torch.randn(20, 4)
    y = torch.zeros(20, dtype=torch.long)
    t = make(callbacks=[NoStep()])
    with pytest.raises(DataError, match=r"different numbers of rows: \[20, 19\]"):
        t.fit((X, y[:-1]))
    with pytest.raises(DataError, match="must be a DataLoader, a torch Dataset or a tuple"):
        t.fit({"X": X, "y": y})
    with pytest.raises(DataError, match="got a tuple of length 1"):
        t.fit((X,))
    with pytest.raises(DataError, match="values must be numeric, got dtype <U1"):
        t.fit((X, ["a"] * 20))
    with pytest.raises(DataError, match="data is empty"):
        t.fit((X[:0], y[:0]))
    with pytest.raises(DataError, match="each batch must be a tuple"):
        t.fit(DataLoader(X, batch_size=4))


def test_predict_kind_errors():
    t = make()
    with pytest.raises(ConfigError, match="unknown predict kind 'prob'"):
        t.predict(torch.randn(3, 4), kind="prob")
    model = nn.Linear(4, 1)
    plain = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss())
    with pytest.raises(ConfigError, match="needs a gradwise head"):
        plain.predict(torch.randn(3, 4), kind="labels")
