"""Optimizers as composable transforms, run as ``torch.optim.Optimizer``.

A transform is an ``init``/``update`` pair with a typed state (optax's design);
``chain`` composes them and ``Optimizer`` runs a chain inside any PyTorch
training loop. The aliases ``sgd``, ``adam``, ``adamw``, ``rmsprop`` and
``adagrad`` take torch.optim's arguments and follow its trajectories, and add
one weight-decay API (``weight_decay``, ``decoupled``, ``decay_mask``) and
proximal regularization (``prox=L1(lam)`` gives exact zeros).

Example:
    >>> import torch
    >>> from gradwise.optim import adamw
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> opt = adamw(model.named_parameters(), lr=1e-3, weight_decay=0.1)
    >>> sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
"""

from gradwise.optim._alias import ALIASES, adagrad, adam, adamw, build, rmsprop, sgd
from gradwise.optim._base import Chain, EmptyState, Transform, chain
from gradwise.optim._decay import add_decayed_weights, add_l2, prox
from gradwise.optim._optimizer import Optimizer
from gradwise.optim._transforms import (
    AdagradState,
    AdamState,
    MomentumState,
    RmsState,
    clip_by_global_norm,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_lr,
    scale_by_momentum,
    scale_by_rms,
)

__all__ = [
    "ALIASES",
    "AdagradState",
    "AdamState",
    "Chain",
    "EmptyState",
    "MomentumState",
    "Optimizer",
    "RmsState",
    "Transform",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "add_l2",
    "build",
    "chain",
    "clip_by_global_norm",
    "prox",
    "rmsprop",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_lr",
    "scale_by_momentum",
    "scale_by_rms",
    "sgd",
]
