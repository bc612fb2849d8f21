"""The transform protocol and ``chain``.

A transform is a small frozen dataclass with two methods, as in optax:

* ``init(param) -> state``: a typed state (a ``NamedTuple`` of tensors, or
  ``EmptyState()``) for one parameter tensor;
* ``update(u, state, param, group) -> (u, state)``: map the incoming update
  ``u`` of ``param`` (at the start of a chain, its gradient) to the outgoing
  one. ``group`` is the parameter's torch param group, so a transform reads
  its hyperparameters there (``group["lr"]``, ``group["betas"]``): schedulers,
  per-group options and ``state_dict`` all work unchanged.

In-place rules, for speed: a transform may update the tensors of its own
state in place (and then return the same state object). It must not modify
the incoming ``u`` in place: ``u`` can be ``param.grad`` or a tensor that an
earlier transform keeps in its state (SGD's momentum buffer is returned as the
update itself). Return a new tensor or ``u`` unchanged.

The optimizer applies ``param += u`` after the last transform, so the chain's
output is the signed step (``scale_by_lr`` multiplies by ``-lr``). A last
transform with ``moves_param`` (Schedule-Free, ASGD, Muon, Lookahead) moves
the parameter in place itself and returns ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, NamedTuple

from torch import Tensor

from gradwise.regularization import selects

Group = Mapping[str, Any]


class EmptyState(NamedTuple):
    """State of a stateless transform."""


class Transform:
    """Base class of every transform: a frozen dataclass with ``init`` and ``update``.

    Class attributes that subclasses set:

    * ``State``: the ``NamedTuple`` type of the per-parameter state; its field
      names become the keys of ``optimizer.state[param]`` (torch's names where
      the concept is torch's: ``exp_avg``, ``momentum_buffer``, ``step``).
    * ``hyper``: names of the dataclass fields that are also param-group
      options. ``Optimizer`` copies them into its defaults, so every group has
      them and may override them; ``update`` reads them from the group.
    * ``mask`` (a field where the transform takes one): parameters the
      transform acts on; the others pass through it unchanged.
    """

    State: ClassVar[type] = EmptyState
    hyper: ClassVar[tuple[str, ...]] = ()
    tree: ClassVar[bool] = False
    post_step: ClassVar[bool] = False
    sparse: ClassVar[bool] = False  # takes sparse gradients (SparseAdam)
    # Makes the whole step itself, in place on the parameter, and returns None
    # instead of an update (Schedule-Free, ASGD, Muon, Lookahead): one pass
    # less than returning a delta. Must be the chain's last transform (a
    # trailing prox aside).
    moves_param: ClassVar[bool] = False

    def init(self, param: Tensor) -> tuple:
        """Return the initial state for ``param``."""
        return EmptyState()

    def update(self, u: Tensor, state: tuple, param: Tensor, group: Group) -> tuple[Tensor, tuple]:
        """Return ``(new_update, new_state)``; see the module docstring for the rules.

        Every per-parameter transform overrides this; a ``tree`` transform (one
        that needs all of a group's updates at once) overrides ``update_tree``
        instead and never reaches here.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no per-parameter update")

    def hyperparameters(self) -> dict[str, Any]:
        """The param-group options this transform reads, with its own values."""
        return {k: getattr(self, k) for k in self.hyper}

    def option(self, group: Group, key: str) -> Any:
        """The group's value of option ``key``, or this transform's own."""
        # Every Optimizer group holds its chain's options: the lookup that
        # succeeds first, getattr only for a group that lacks the key.
        try:
            return group[key]
        except KeyError:
            return getattr(self, key)

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))  # type: ignore[arg-type]
        return f"{_public_name(type(self).__name__)}({args})"


def _public_name(cls_name: str) -> str:
    # ScaleByAdam -> scale_by_adam, the name users call.
    out = "".join("_" + c.lower() if c.isupper() else c for c in cls_name)
    return out.lstrip("_")


@dataclass(frozen=True, repr=False)
class Chain(Transform):
    """Transforms applied one after the other; build it with ``chain``."""

    transforms: tuple[Transform, ...]

    def leaves(self) -> tuple[Transform, ...]:
        """The transforms with nested chains flattened, in order."""
        out: list[Transform] = []
        for t in self.transforms:
            out.extend(t.leaves() if isinstance(t, Chain) else (t,))
        return tuple(out)

    def hyperparameters(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for t in self.leaves():
            merged.update(t.hyperparameters())
        return merged

    def init(self, param: Tensor) -> tuple:
        """A tuple with one state per leaf transform (``EmptyState`` where masked out)."""
        return tuple(
            t.init(param) if selects(getattr(t, "mask", None), None, param) else EmptyState()
            for t in self.leaves()
        )

    def update(self, u: Tensor, state: tuple, param: Tensor, group: Group) -> tuple[Tensor, tuple]:
        """Run the leaves on one tensor (masks see no name; post-step ``prox`` is skipped).

        ``Optimizer`` runs chains itself, across all parameters; this method
        serves tests and custom loops over single tensors. As in an
        ``Optimizer``'s param groups, the transforms' own hyperparameters
        (``lr`` of ``scale_by_lr``...) fill the options ``group`` lacks. The
        update is ``None`` when the last transform moved ``param`` itself
        (``moves_param``).
        """
        group = {**self.hyperparameters(), **group}
        new_states = []
        for t, s in zip(self.leaves(), state):
            if t.tree:
                raise TypeError(f"{t!r} needs all parameters at once; run it through Optimizer")
            if t.post_step or not selects(getattr(t, "mask", None), None, param):
                new_states.append(s)
                continue
            u, s = t.update(u, s, param, group)
            new_states.append(s)
        return u, tuple(new_states)

    def __repr__(self) -> str:
        return "chain(" + ", ".join(map(repr, self.transforms)) + ")"


def chain(*transforms: Transform | Sequence[Transform]) -> Chain:
    """Compose transforms left to right: ``chain(a, b)(g) = b(a(g))``.

    Example:
        >>> from gradwise.optim import chain, scale_by_adam, add_decayed_weights, scale_by_lr
        >>> adamw_like = chain(scale_by_adam(), add_decayed_weights(0.01), scale_by_lr(1e-3))
    """
    flat: list[Transform] = []
    for t in transforms:
        if isinstance(t, Transform):
            flat.append(t)
        elif isinstance(t, Sequence) and all(isinstance(x, Transform) for x in t):
            flat.extend(t)
        else:
            raise TypeError(f"chain takes transforms; got {type(t).__name__}")
    return Chain(tuple(flat))


def leaves_of(transform: Transform | Sequence[Transform]) -> tuple[Transform, ...]:
    """Flatten a transform, a chain or a list of them into leaf transforms."""
    return chain(transform).leaves() if not isinstance(transform, Chain) else transform.leaves()
