"""Where the training state's tensors live, so that the guard's copies need no state_dict walk.

:class:`gradwise.train.DivergenceGuard` copies the model's and the
optimizer's state a few times per epoch. Going through ``state_dict()`` each
time walks every module (prefixes, hooks, a new dict) and packs the optimizer
state, which on a small model costs more than the copy itself. A
:class:`Layout` finds the live tensors once (the model's parameters and
persistent buffers, in ``state_dict`` order, and every optimizer state
tensor), with a cheap signature of the structure they sit in. A copy whose
tensors were matched to that list (:meth:`Layout.bind`) is then refreshed
with one multi-tensor copy, and put back in place the same way, for as long
as the signature holds. Anything it cannot vouch for (state-dict hooks, a
module with its own ``_save_to_state_dict`` or extra state, an optimizer
with its own ``state_dict``, non-tensor optimizer state, a changed
structure) goes through ``state_dict``/``load_state_dict`` as before; a
hook registered in the middle of a fit, after the layout was learnt, is not
seen. Putting a copy back in place keeps every live tensor (the optimizer's
caches of its state tensors stay valid) where ``load_state_dict`` would
replace the optimizer's. What it asks of torch that torch has no public
way to answer (the hooks, the overridden private methods, the dicts
``state_dict`` walks) goes through :mod:`gradwise._torch_compat`.
"""

from __future__ import annotations

import copy
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Any

import torch
from torch import nn

from gradwise._torch_compat import (
    module_saves_plainly,
    module_state_dict_hooked,
    module_state_dicts,
    optimizer_state_dict_hooked,
)

_IMMUTABLE = frozenset({int, float, complex, str, bytes, bool, type(None), torch.dtype})
_STATE_DICT = torch.optim.Optimizer.state_dict
_PARAMS, _META = itemgetter("params"), attrgetter("shape", "dtype")


def _load_state_dicts() -> tuple[Any, ...]:
    from gradwise.optim import Optimizer  # gradwise's only adds a cache reset and step casts

    return (torch.optim.Optimizer.load_state_dict, Optimizer.load_state_dict)


def _plain_module(m: nn.Module) -> bool:
    kind = type(m)
    return (
        not module_state_dict_hooked(m)
        and kind.state_dict is nn.Module.state_dict  # it calls its children's
        and kind.load_state_dict is nn.Module.load_state_dict
        and module_saves_plainly(kind)
        and kind.get_extra_state is nn.Module.get_extra_state
    )


def _plain_optimizer(opt: Any) -> bool:
    return (
        isinstance(opt, torch.optim.Optimizer)
        and type(opt).state_dict is _STATE_DICT
        and type(opt).load_state_dict in _load_state_dicts()
        and not optimizer_state_dict_hooked(opt)
    )


def _value(v: Any) -> Any:
    """A param-group option as a copy would hold it: itself if immutable, else a copy."""
    kind = type(v)
    if kind in _IMMUTABLE or (kind is tuple and all(type(x) in _IMMUTABLE for x in v)):
        return v
    if kind is list and all(type(x) in _IMMUTABLE for x in v):
        return list(v)
    return copy.deepcopy(v)


class Layout:
    """The live tensors of a model and its optimizer, and the structure they sit in.

    Args:
        model: the module whose ``state_dict`` a copy holds.
        optimizer: its optimizer (a ``torch.optim.Optimizer``).

    ``src`` lists the tensors in the order :meth:`bind` matches them to a
    copy's: the model's state-dict entries, then each optimizer state
    tensor. ``generation`` counts the structures learnt; a copy bound under
    an older one is refreshed through ``state_dict`` again.
    """

    def __init__(self, model: nn.Module, optimizer: Any) -> None:
        self.model, self.optimizer = model, optimizer
        self.generation = 0
        self.signature: Any = None
        self.src: list[torch.Tensor] = []
        self.keys: list[tuple[Any, ...]] = []  # ("model", key) or ("opt", index, key)
        # every module's children, parameters and buffers dicts: the structure state_dict
        # walks (gradwise._torch_compat.module_state_dicts, read once per learn)
        self.dicts: list[dict[str, Any]] = []
        self.mutable: list[list[str]] = []  # per param group, the options that are not scalars
        self.templates: tuple[Any, Any] = (None, None)  # state_dict()s holding the live tensors
        self.unsupported = False  # a learn found what it cannot vouch for: no more tries

    # -- the structure ---------------------------------------------------------------

    def _signature(self) -> Any:
        # C-level maps only (it runs at every copy): the identity of every module,
        # parameter, buffer, optimizer state key and tensor, and group member; the
        # groups' option names and types; the tensors' shapes and dtypes.
        opt, groups = self.optimizer, self.optimizer.param_groups
        values = chain(
            chain.from_iterable(map(dict.values, self.dicts)),
            opt.state,
            chain.from_iterable(map(dict.values, opt.state.values())),
            chain.from_iterable(map(_PARAMS, groups)),
        )
        return (
            tuple(map(id, values)),
            tuple(map(tuple, groups)),
            tuple(chain.from_iterable(map(map, repeat(type), map(dict.values, groups)))),
            tuple(map(_META, self.src)),
        )

    def current(self) -> bool:
        """Whether the live structure is the one learnt last (no walk of ``state_dict``)."""
        return self.signature is not None and self._signature() == self.signature

    def ready(self) -> bool:
        """Whether copies can go through the layout now: as learnt, or learnt again."""
        return self.current() or self.learn()

    def learn(self) -> bool:
        """Find the live tensors again; False where it cannot vouch for them.

        After a False, it does not try again (copies go through ``state_dict``).
        """
        self.signature, self.src, self.keys = None, [], []
        if self.unsupported:
            return False
        self.unsupported = True  # until the end of this method
        model, opt = self.model, self.optimizer
        modules = list(model.modules())
        if not _plain_optimizer(opt) or not all(map(_plain_module, modules)):
            return False
        self.dicts = [d for m in modules for d in module_state_dicts(m)]
        self.mutable = [
            [k for k, v in g.items() if k != "params" and type(v) not in _IMMUTABLE]
            for g in opt.param_groups
        ]
        # state_dict's own output, holding the live tensors: what a fresh copy clones
        msd, osd = model.state_dict(keep_vars=True), opt.state_dict()
        for key, t in msd.items():
            if not isinstance(t, torch.Tensor) or t.layout != torch.strided:
                return False
            self.src.append(t)
            self.keys.append(("model", key))
        for index, st in osd["state"].items():
            for k, v in st.items():
                if type(v) is not torch.Tensor or v.layout != torch.strided:
                    return False
                self.src.append(v)
                self.keys.append(("opt", index, k))
        self.templates, self.unsupported = (msd, osd), False
        self.generation += 1
        self.signature = self._signature()
        return True

    # -- copies ----------------------------------------------------------------------

    def bind(self, snap: Any) -> None:
        """Match a copy of the state as it is now (after :meth:`ready`) to :attr:`src`.

        Sets ``snap.bound``; None where the copy does not fit (another shape...).
        """
        snap.bound = None
        dst = []
        for key, s in zip(self.keys, self.src, strict=True):
            try:
                d = (
                    snap.model[key[1]]
                    if key[0] == "model"
                    else snap.optimizer["state"][key[1]][key[2]]
                )
            except (KeyError, TypeError):
                return
            if type(d) is not torch.Tensor or d.shape != s.shape or d.dtype != s.dtype:
                return
            dst.append(d)
        groups = snap.optimizer["param_groups"]
        if len(groups) != len(self.optimizer.param_groups):
            return
        snap.bound = (self, self.generation, dst)

    def _dst(self, snap: Any) -> list[torch.Tensor] | None:
        bound = snap.bound
        if bound is None or bound[0] is not self or bound[1] != self.generation:
            return None
        return bound[2]

    def copy_in(self, snap: Any, copy_all: Any) -> bool:
        """Refresh a copy bound to this layout in place (after :meth:`ready`); False if not bound."""
        dst = self._dst(snap)
        if dst is None:
            return False
        copy_all(dst, self.src)
        self.groups_into(snap)
        return True

    def groups_into(self, snap: Any) -> None:
        """Write the live param groups' options into a copy's (its ``params`` stay indices)."""
        for live, saved, mutable in zip(
            self.optimizer.param_groups, snap.optimizer["param_groups"], self.mutable
        ):
            index = saved["params"]
            saved.update(live)  # the options: numbers, flags, strings
            saved["params"] = index
            for k in mutable:
                saved[k] = _value(live[k])

    def copy_out(self, snap: Any, copy_all: Any) -> bool:
        """Write a bound copy back into the live tensors and param groups; False if it cannot."""
        dst = self._dst(snap)
        if dst is None or not self.current():
            return False
        copy_all(self.src, dst)
        for live, saved, mutable in zip(
            self.optimizer.param_groups, snap.optimizer["param_groups"], self.mutable
        ):
            params = live["params"]
            live.update(saved)
            live["params"] = params
            for k in mutable:
                live[k] = _value(saved[k])
        return True
