"""The one place gradwise touches private attributes of torch.

torch's ``LRScheduler`` reports the rates of its last step through the public
``get_last_lr()``, but has no public way to set them. Restarting a schedule
(gradual unfreezing) and scaling every rate after a divergence rescue must
change what it reports, so both go through :func:`set_last_lr`.

:class:`gradwise.train.DivergenceGuard` copies the live tensors of a model and
its optimizer without walking ``state_dict()`` (``train/_guard_layout.py``),
which it may only do where ``state_dict`` would give nothing else: no
state-dict hooks (:func:`module_state_dict_hooked`,
:func:`optimizer_state_dict_hooked`), a module that saves and loads its own
tensors as ``nn.Module`` does (:func:`module_saves_plainly`); and it watches
the dicts ``state_dict`` walks (:func:`module_state_dicts`). torch has no
public way to ask any of this.

Each reads its attributes directly (no default): if torch moves one, the call
raises a :class:`RuntimeError` naming it and torch's version instead of
answering wrongly (a missing hook dict read as "no hooks" would bypass the
hooks), and ``tests/test_torch_compat.py`` fails, registering hooks through
torch's public API and checking what each function reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

_LAST_LR = "_last_lr"  # what LRScheduler.get_last_lr() returns (torch 2.x)


def set_last_lr(scheduler: Any, lrs: Sequence[Any]) -> None:
    """Make ``scheduler.get_last_lr()`` report ``lrs`` (one rate per param group).

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)
        >>> set_last_lr(sched, [0.05]); sched.get_last_lr()
        [0.05]
    """
    if not hasattr(scheduler, _LAST_LR):
        raise RuntimeError(
            f"{type(scheduler).__name__} (torch {torch.__version__}) keeps no {_LAST_LR!r} "
            "behind get_last_lr(); gradwise._torch_compat.set_last_lr must follow torch"
        )
    setattr(scheduler, _LAST_LR, list(lrs))


def _moved(what: str, error: AttributeError) -> RuntimeError:
    return RuntimeError(
        f"torch {torch.__version__} has no {what} ({error}); "
        "gradwise._torch_compat must follow torch"
    )


def _hooked(obj: Any, names: tuple[str, ...], what: str) -> bool:
    """Whether any of ``obj``'s hook dicts ``names`` holds a hook; read with no default."""
    try:
        return any(bool(getattr(obj, name)) for name in names)
    except AttributeError as e:
        raise _moved(what, e) from e


def module_state_dict_hooked(module: nn.Module) -> bool:
    """Whether ``module`` itself (not its children) has a state-dict hook of any kind.

    That is, one registered with ``register_state_dict_pre_hook``,
    ``register_state_dict_post_hook`` (or the older
    ``_register_state_dict_hook``), ``register_load_state_dict_pre_hook`` or
    ``register_load_state_dict_post_hook``.

    Example:
        >>> m = torch.nn.Linear(2, 1)
        >>> module_state_dict_hooked(m)
        False
        >>> _ = m.register_state_dict_pre_hook(lambda *a: None)
        >>> module_state_dict_hooked(m)
        True
    """
    return _hooked(module, ("_state_dict_hooks", "_state_dict_pre_hooks",
                            "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks"),
                   "nn.Module state-dict hook dicts")


def optimizer_state_dict_hooked(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` has a hook on ``state_dict`` or ``load_state_dict``.

    That is, one registered with ``Optimizer.register_state_dict_pre_hook``,
    ``register_state_dict_post_hook``, ``register_load_state_dict_pre_hook`` or
    ``register_load_state_dict_post_hook``.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> optimizer_state_dict_hooked(opt)
        False
        >>> _ = opt.register_state_dict_post_hook(lambda o, sd: sd)
        >>> optimizer_state_dict_hooked(opt)
        True
    """
    return _hooked(optimizer, ("_optimizer_state_dict_pre_hooks",
                               "_optimizer_state_dict_post_hooks",
                               "_optimizer_load_state_dict_pre_hooks",
                               "_optimizer_load_state_dict_post_hooks"),
                   "Optimizer state-dict hook dicts")


def module_saves_plainly(kind: type[nn.Module]) -> bool:
    """Whether modules of type ``kind`` save and load their own tensors as ``nn.Module`` does.

    True where neither ``_save_to_state_dict`` nor ``_load_from_state_dict``
    is overridden, batch norm's ``_load_from_state_dict`` aside (it only fills
    in a ``num_batches_tracked`` missing from files of old torch versions).
    ``get_extra_state`` and ``state_dict`` themselves are public: callers check
    them.

    Example:
        >>> module_saves_plainly(torch.nn.BatchNorm1d)
        True
    """
    try:
        loads = (
            nn.Module._load_from_state_dict,
            nn.modules.batchnorm._NormBase._load_from_state_dict,
        )
        return (
            kind._save_to_state_dict is nn.Module._save_to_state_dict
            and kind._load_from_state_dict in loads
        )
    except AttributeError as e:
        raise _moved("nn.Module._save_to_state_dict/_load_from_state_dict", e) from e


def module_state_dicts(
    module: nn.Module,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The live dicts of ``module``'s children, parameters and buffers (``state_dict`` walks them).

    The dicts themselves, not copies: an entry added, removed or replaced later
    shows in them. A parameter or buffer registered as None has a None entry;
    the buffers include non-persistent ones.

    Example:
        >>> m = torch.nn.Linear(2, 1)
        >>> children, params, buffers = module_state_dicts(m)
        >>> sorted(params), children, buffers
        (['bias', 'weight'], {}, {})
    """
    try:
        return module._modules, module._parameters, module._buffers
    except AttributeError as e:
        raise _moved("nn.Module._modules/_parameters/_buffers", e) from e
