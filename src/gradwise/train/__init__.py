"""Training: the Trainer, its callbacks, metrics and resumable checkpoints.

>>> import torch
>>> from torch import nn
>>> from gradwise.train import Trainer, EarlyStopping
>>> model = nn.Linear(4, 1)
>>> X, y = torch.randn(100, 4), torch.randn(100, 1)
>>> trainer = Trainer(model, torch.optim.Adam(model.parameters()), nn.MSELoss(),
...                   epochs=3, seed=0, callbacks=[EarlyStopping("train_loss")])
>>> len(trainer.fit((X, y)))
3

See ``docs/train.md`` for the event list, the log format and resuming.
"""

from gradwise.train import metrics
from gradwise.train._checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from gradwise.train._diagnostics import GradientDiagnostics
from gradwise.train._distributed import is_main_process, process_rank, world_size
from gradwise.train._early_stopping import EarlyStopping
from gradwise.train._fsdp import FSDP
from gradwise.train._guard import DivergenceError, DivergenceGuard
from gradwise.train._logger import MetricsLogger
from gradwise.train._progress import ProgressBar
from gradwise.train._rng import seed_everything
from gradwise.train._state import EVENTS, Callback, Control, History, TrainState
from gradwise.train._threads import auto_threads, choose_threads
from gradwise.train._trainer import Trainer
from gradwise.train.metrics import Metric, get_metric

__all__ = [
    "EVENTS",
    "Callback",
    "Checkpoint",
    "Control",
    "DivergenceError",
    "DivergenceGuard",
    "EarlyStopping",
    "FSDP",
    "GradientDiagnostics",
    "History",
    "Metric",
    "MetricsLogger",
    "ProgressBar",
    "TrainState",
    "Trainer",
    "auto_threads",
    "choose_threads",
    "get_metric",
    "is_main_process",
    "load_checkpoint",
    "metrics",
    "process_rank",
    "save_checkpoint",
    "seed_everything",
    "world_size",
]
