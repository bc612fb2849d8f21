"""Optimizers as composable transforms, run as ``torch.optim.Optimizer``.

A transform is an ``init``/``update`` pair with a typed state (optax's design);
``chain`` composes them and ``Optimizer`` runs a chain inside any PyTorch
training loop. The aliases ``sgd``, ``adam``, ``adamw``, ``rmsprop``,
``adagrad``, ``nadam``, ``radam``, ``adamax``, ``adadelta``, ``asgd``,
``rprop``, ``adafactor``, ``muon``, ``sparse_adam`` and ``lbfgs`` take
torch.optim's arguments and follow its trajectories; ``lion``, ``lamb``,
``lars``, ``schedule_free_adamw``, ``schedule_free_sgd``, ``lookahead`` and
``SAM`` equal their reference packages. The aliases add
one weight-decay API (``weight_decay``, ``decoupled``, ``decay_mask``) and
proximal regularization (``prox=L1(lam)`` gives exact zeros). ``lr`` lives in
the param groups; ``scale_lr`` scales it everywhere it is held (groups and an
attached scheduler), ``set_lr`` writes it.

Example:
    >>> import torch
    >>> from gradwise.optim import adamw
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> opt = adamw(model.named_parameters(), lr=1e-3, weight_decay=0.1)
    >>> sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
"""

from gradwise.optim._adaptive import (
    AdadeltaState,
    AdamaxState,
    NadamState,
    RadamState,
    scale_by_adadelta,
    scale_by_adamax,
    scale_by_nadam,
    scale_by_radam,
)
from gradwise.optim._alias import ALIASES, adagrad, adam, adamw, build, rmsprop, sgd
from gradwise.optim._alias_modern import lamb, lars, lion, schedule_free_adamw, schedule_free_sgd
from gradwise.optim._alias_torch import (
    adadelta,
    adafactor,
    adamax,
    asgd,
    muon,
    nadam,
    radam,
    rprop,
    sparse_adam,
)
from gradwise.optim._base import Chain, EmptyState, Transform, chain
from gradwise.optim._decay import add_decayed_weights, add_l2, prox
from gradwise.optim._lbfgs import LBFGS, cubic_interpolate, lbfgs, lbfgs_direction, strong_wolfe
from gradwise.optim._lr import scale_lr, set_lr
from gradwise.optim._matrix import (
    AdafactorState,
    MuonState,
    muon_step,
    newton_schulz,
    scale_by_adafactor,
    scale_by_muon,
)
from gradwise.optim._modern import (
    LambState,
    LionState,
    Lookahead,
    LookaheadState,
    lookahead,
    scale_by_lamb,
    scale_by_lars,
    scale_by_lion,
)
from gradwise.optim._optimizer import Optimizer
from gradwise.optim._sam import SAM
from gradwise.optim._schedule_free import scale_by_second_moment, schedule_free
from gradwise.optim._schedule_free_optimizer import ScheduleFreeOptimizer
from gradwise.optim._signed import AsgdState, RpropState, asgd_step, rprop_step
from gradwise.optim._sparse import SparseAdamState, scale_by_sparse_adam
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
    "AdadeltaState",
    "AdafactorState",
    "AdagradState",
    "AdamState",
    "AdamaxState",
    "AsgdState",
    "Chain",
    "EmptyState",
    "LBFGS",
    "LambState",
    "LionState",
    "Lookahead",
    "LookaheadState",
    "MomentumState",
    "MuonState",
    "NadamState",
    "Optimizer",
    "RadamState",
    "RmsState",
    "RpropState",
    "SAM",
    "ScheduleFreeOptimizer",
    "SparseAdamState",
    "Transform",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "add_decayed_weights",
    "add_l2",
    "asgd",
    "asgd_step",
    "build",
    "chain",
    "clip_by_global_norm",
    "cubic_interpolate",
    "lamb",
    "lars",
    "lbfgs",
    "lbfgs_direction",
    "lion",
    "lookahead",
    "muon",
    "muon_step",
    "nadam",
    "newton_schulz",
    "prox",
    "radam",
    "rmsprop",
    "rprop",
    "rprop_step",
    "scale_by_adadelta",
    "scale_by_adafactor",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_lamb",
    "scale_by_lars",
    "scale_by_lion",
    "scale_by_lr",
    "scale_by_momentum",
    "scale_by_muon",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_second_moment",
    "scale_by_sparse_adam",
    "scale_lr",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "set_lr",
    "sgd",
    "sparse_adam",
    "strong_wolfe",
]
