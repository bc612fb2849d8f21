"""Sharpness-Aware Minimization around any optimizer: ``SAM``, a two-step closure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from gradwise.errors import ConfigError
from gradwise.optim import _validate as check


class SAM:
    """SAM (Foret et al. 2021) and adaptive SAM (Kwon et al. 2021) around ``optimizer``.

    ``step(closure)`` expects the gradients of the current loss to be there
    already (call ``loss.backward()`` first). It moves every weight to the
    worst nearby point ``w + e``, ``e = rho * T^2 g / (||T g|| + perturb_eps)``
    (``T = |w|`` with ``adaptive``, else 1; the norm over all parameters),
    zeroes the gradients, calls ``closure()`` (which recomputes the loss and
    its gradients there), restores ``w`` and lets ``optimizer`` step with the
    gradient taken at ``w + e``. Equals pytorch-optimizer's ``SAM``.

    It is not a transform: the second gradient needs a second forward and
    backward pass, which only a closure can run. Wrap any optimizer, a
    gradwise chain included (``SAM(adamw(...))``); the wrapped one keeps its
    param groups, schedulers and ``state_dict``.

    Example:
        >>> import torch
        >>> from gradwise.optim import sgd
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = SAM(sgd(model.parameters(), lr=0.1), rho=0.05)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(torch.ones(2, 3)).pow(2).mean()
        ...     loss.backward()
        ...     return loss
        >>> _ = closure(); _ = opt.step(closure)
    """

    def __init__(self, optimizer: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False,
                 perturb_eps: float = 1e-12) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ConfigError(f"SAM wraps a torch.optim.Optimizer; got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.rho = check.number("SAM", "rho", rho)
        self.adaptive = check.flag("SAM", "adaptive", adaptive)
        self.perturb_eps = check.number("SAM", "perturb_eps", perturb_eps)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The wrapped optimizer's param groups (schedulers see these)."""
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the wrapped optimizer's gradients."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state_dict (SAM keeps nothing between steps)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load the wrapped optimizer's state."""
        self.optimizer.load_state_dict(state)

    @torch.no_grad()
    def perturb(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Move to ``w + e``; return ``(param, old value)`` pairs to restore."""
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        # A complex parameter as its real view, as torch.optim treats it.
        pairs = [(torch.view_as_real(p), torch.view_as_real(p.grad)) if p.is_complex() else (p, p.grad)
                 for p in params]
        sq = sum(((w.abs() if self.adaptive else 1.0) * g).pow(2).sum() for w, g in pairs)
        norm = torch.as_tensor(sq).sqrt().add(self.perturb_eps)
        saved = []
        for p, (w, g) in zip(params, pairs):
            saved.append((p, p.clone()))
            w.add_((w.pow(2) if self.adaptive else 1.0) * g * (self.rho / norm).to(w))
        return saved

    def step(self, closure: Callable[[], Any]) -> Any:
        """One SAM step: perturb, ``closure()`` at ``w + e``, restore, inner step; returns that loss."""
        if closure is None:
            raise ConfigError("SAM: step needs a closure that recomputes the loss and its gradients")
        saved = self.perturb()
        self.zero_grad()
        with torch.enable_grad():
            loss = closure()
        with torch.no_grad():
            for p, old in saved:
                p.copy_(old)
        self.optimizer.step()
        return loss
