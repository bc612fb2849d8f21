"""``ScheduleFreeOptimizer``: an Optimizer whose chain ends in ``schedule_free``, with train/eval swaps.

Apart from the transforms (:mod:`gradwise.optim._schedule_free`) so that the
transforms do not import the Optimizer, whose group path reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from gradwise.errors import ConfigError
from gradwise.optim._optimizer import Optimizer
from gradwise.optim._schedule_free import ScheduleFreeStep


class ScheduleFreeOptimizer(Optimizer):
    """An ``Optimizer`` whose chain ends in ``schedule_free``, with ``train()`` and ``eval()``.

    Call ``opt.eval()`` before evaluating or saving the model (the parameters
    then hold the average ``x``) and ``opt.train()`` before the next step.
    It starts in train mode; ``step`` in eval mode raises.
    """

    def __init__(self, params: Iterable[Any], transform: Any, **defaults: Any) -> None:
        super().__init__(params, transform, **defaults)
        sf = next((t for t in reversed(self.leaves) if isinstance(t, ScheduleFreeStep)), None)
        if sf is None:
            raise ConfigError("ScheduleFreeOptimizer needs a chain with schedule_free(...)")
        self._sf: ScheduleFreeStep = sf
        for g in self.param_groups:
            g.setdefault("train_mode", True)

    _PICKLED = Optimizer._PICKLED + ("_sf",)

    def _swap(self, to_train: bool) -> None:
        j = self.leaves.index(self._sf)
        key = self._keys[j][0]  # "z"
        for g in self.param_groups:
            if bool(g.get("train_mode", True)) == to_train:
                continue
            beta = g.get("momentum", self._sf.momentum)
            weight = 1 - beta if to_train else 1 - 1 / beta
            with torch.no_grad():
                for p in g["params"]:
                    z = self.state[p].get(key) if p in self.state else None
                    if z is not None:
                        p.lerp_(z, weight)
            g["train_mode"] = to_train

    def eval(self) -> None:
        """Put the averaged weights ``x`` into the parameters (for evaluation, saving)."""
        self._swap(False)

    def train(self) -> None:
        """Put the gradient points ``y`` back into the parameters (for training steps)."""
        self._swap(True)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if not all(g.get("train_mode", True) for g in self.param_groups):
            raise RuntimeError("schedule-free: call opt.train() before step (the optimizer is in eval mode)")
        return super().step(closure)
