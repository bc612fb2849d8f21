"""Freeze and unfreeze parameters, with a choice for batch-norm layers.

A frozen parameter has ``requires_grad=False`` and ``grad=None``. Autograd
then computes no gradient for it, and every torch optimizer (gradwise's
included) skips a parameter whose ``grad`` is None: no update, no new
optimizer state and no weight decay, decoupled or not. Clearing ``grad``
matters: a stale gradient left from before freezing would otherwise be
applied again at every step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from gradwise.errors import unknown
from gradwise.finetune._groups import LayerGroup, batchnorms
from gradwise.finetune._select import as_patterns, matches, select

BATCHNORM_MODES = ("eval", "train", "stats")
"""What a frozen group does with its batch-norm layers.

* ``"eval"`` (default): their weight and bias are frozen and the layers run in
  eval mode (running statistics used and not updated), so a frozen group
  computes exactly what it computed before fine-tuning.
* ``"train"``: their weight and bias stay trainable and the layers stay in
  train mode (fastai's ``train_bn``): cheap adaptation of the statistics of a
  new domain.
* ``"stats"``: weight and bias frozen, running statistics still updated in
  train mode (what ``requires_grad=False`` alone does).
"""

_EVAL_FLAG = "_gradwise_bn_eval"
_HOOKED = "_gradwise_bn_hooked"
_RESTORE = "_gradwise_bn_restore"


def _force_eval(module: nn.Module, args: Any) -> None:
    # A trainer calls model.train() every epoch; forcing eval inside the forward
    # (and restoring the mode after it) keeps a frozen batch norm in eval mode
    # whatever mode the rest of the model is in.
    if getattr(module, _EVAL_FLAG, False) and module.training:
        module.training = False
        setattr(module, _RESTORE, True)


def _restore_mode(module: nn.Module, args: Any, output: Any) -> None:
    if getattr(module, _RESTORE, False):
        module.training = True
        setattr(module, _RESTORE, False)


def _set_bn_eval(module: nn.Module, on: bool) -> None:
    if on and not getattr(module, _HOOKED, False):
        module.register_forward_pre_hook(_force_eval)
        module.register_forward_hook(_restore_mode, always_call=True)
        setattr(module, _HOOKED, True)
    setattr(module, _EVAL_FLAG, on)


def is_bn_eval(module: nn.Module) -> bool:
    """True when a frozen batch-norm layer is held in eval mode by :func:`freeze`."""
    return bool(getattr(module, _EVAL_FLAG, False))


def _targets(
    target: Any, patterns: str | Iterable[str] | None
) -> tuple[list[tuple[str, nn.Parameter]], list[nn.Module]]:
    """The parameters and batch-norm layers that ``target`` (and ``patterns``) select."""
    if isinstance(target, LayerGroup):
        if patterns is not None:
            raise TypeError("freeze/unfreeze: patterns apply to a module, not to a LayerGroup")
        return list(target.params), list(batchnorms(target))
    if isinstance(target, nn.Module):
        bn_type = nn.modules.batchnorm._BatchNorm
        if patterns is None:
            bns = [m for m in target.modules() if isinstance(m, bn_type)]
            return list(target.named_parameters()), bns
        pats = as_patterns("patterns", patterns)
        params = select(target, pats)
        ids = {id(p) for _, p in params}
        bns = []
        for path, m in target.named_modules():
            if not isinstance(m, bn_type):
                continue
            own = list(m.parameters())
            if any(matches(path, pat) for pat in pats if path) or (
                own and all(id(p) in ids for p in own)
            ):
                bns.append(m)
        return params, bns
    if isinstance(target, Iterable) and not isinstance(target, (str, torch.Tensor)):
        params, bns = [], []
        for item in target:
            p, b = _targets(item, patterns)
            params += p
            bns += b
        return params, bns
    raise TypeError(
        "freeze/unfreeze: target must be an nn.Module, a LayerGroup or a list of them, "
        f"got {type(target).__name__}"
    )


def freeze(
    target: nn.Module | LayerGroup | Iterable[nn.Module | LayerGroup],
    patterns: str | Iterable[str] | None = None,
    *,
    batchnorm: str = "eval",
) -> list[str]:
    """Stop training some parameters: ``requires_grad=False`` and ``grad=None``.

    Args:
        target: a module (all its parameters), a :class:`LayerGroup`, or a list of them.
        patterns: with a module: only its parameters whose names match one of
            these globs (``"encoder.layer.[0-3]"``, ``"*.bias"``); a pattern
            naming a module selects everything under it.
        batchnorm: ``"eval"``, ``"train"`` or ``"stats"``, see :data:`BATCHNORM_MODES`.

    Returns:
        the names of the parameters now frozen.

    Example:
        >>> from gradwise.nn import MLP
        >>> net = MLP(4, [8], 2)
        >>> freeze(net, "block0")
        ['block0.linear.weight', 'block0.linear.bias']
        >>> [n for n, p in net.named_parameters() if p.requires_grad]
        ['head.weight', 'head.bias']
    """
    if batchnorm not in BATCHNORM_MODES:
        raise unknown("batchnorm mode", str(batchnorm), BATCHNORM_MODES)
    params, bns = _targets(target, patterns)
    keep = {id(p) for m in bns for p in m.parameters()} if batchnorm == "train" else set()
    names = []
    for name, p in params:
        if id(p) in keep:
            continue
        p.requires_grad_(False)
        p.grad = None
        names.append(name)
    for m in bns:
        _set_bn_eval(m, batchnorm == "eval")
    return names


def unfreeze(
    target: nn.Module | LayerGroup | Iterable[nn.Module | LayerGroup],
    patterns: str | Iterable[str] | None = None,
) -> list[str]:
    """Train parameters again: ``requires_grad=True``; batch norms leave forced eval mode.

    Arguments as for :func:`freeze`. Returns the names of the parameters now trainable.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
        >>> _ = freeze(net)
        >>> unfreeze(net, "1")
        ['1.weight', '1.bias']
    """
    params, bns = _targets(target, patterns)
    for _, p in params:
        p.requires_grad_(True)
    for m in bns:
        _set_bn_eval(m, False)
    return [n for n, _ in params]


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of scalar parameters (tied weights counted once).

    Example:
        >>> from torch import nn
        >>> net = nn.Linear(3, 2)
        >>> _ = freeze(net, "bias")
        >>> count_trainable(net)
        (6, 8)
    """
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total
