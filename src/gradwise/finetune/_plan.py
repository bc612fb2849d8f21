"""Declarative fine-tuning plans: which layer groups train from which epoch or step.

A plan is a list of stages. Each stage starts at an epoch (1-based, as the
trainer counts them) or after a number of optimizer steps, and names what
trains from then on; everything else is frozen. Selectors:

* a group name or a glob over group names: ``"head"``, ``"encoder.layer.*"``;
* ``"top:K"``: the K groups nearest the output;
* ``"all"``: every group;
* ``"lora"``: the LoRA adapter factors (``lora_A``/``lora_B``) wherever they sit.

In YAML::

    plan:
      unit: epoch
      stages:
        - {epoch: 1, train: [head]}
        - {epoch: 3, train: ["top:3"]}
        - {epoch: 5, train: [all]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from torch import nn

from gradwise.errors import ConfigError, closest, unknown
from gradwise.finetune._groups import LayerGroup

UNITS = ("epoch", "step")
KINDS = ("full", "head_only", "gradual", "lora", "stages")


def _int(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"plan: {field} must be an int >= {minimum}, got {value!r}")
    return value


def is_lora_param(name: str) -> bool:
    """True for a LoRA factor: a ``lora_*`` component in the dotted parameter name."""
    return any(part.startswith("lora_") for part in name.split("."))


@dataclass(frozen=True)
class Stage:
    """One stage of a plan: from ``start`` (an epoch or a step count) train ``train``.

    Attributes:
        start: first epoch (1-based) of the stage, or number of optimizer steps
            done before it begins (0 for the first stage), per the plan's unit.
        train: selectors of what trains (see the module docstring).
    """

    start: int
    train: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.train, str) or not all(isinstance(s, str) and s for s in self.train):
            raise ConfigError(f"plan stage: train must be a list of selectors, got {self.train!r}")
        object.__setattr__(self, "train", tuple(self.train))


@dataclass(frozen=True)
class Gradual:
    """ULMFiT's rule, expanded once the number of groups is known (see :meth:`Plan.gradual`)."""

    every: int = 1
    max_groups: int | None = None
    also: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _int("every", self.every, 1)
        if self.max_groups is not None:
            _int("max_groups", self.max_groups, 1)
        also = (self.also,) if isinstance(self.also, str) else tuple(self.also)
        object.__setattr__(self, "also", also)


class Plan:
    """Which layer groups train when; used by :class:`GradualUnfreezing`.

    Build one with :meth:`gradual` (ULMFiT), :meth:`full`, :meth:`head_only`,
    :meth:`lora`, from explicit stages, or from a YAML mapping with
    :meth:`from_dict`.

    Args:
        stages: :class:`Stage` objects or mappings ``{"epoch"|"step": n, "train": [...]}``,
            in increasing order of start, the first at epoch 1 / step 0; or a
            :class:`Gradual` rule.
        unit: ``"epoch"`` or ``"step"``.

    Example:
        >>> plan = Plan([{"epoch": 1, "train": ["head"]}, {"epoch": 3, "train": ["all"]}])
        >>> plan.stage_index(epoch=2, step=40, n_groups=3), plan.stage_index(epoch=3, step=60, n_groups=3)
        (0, 1)
    """

    def __init__(
        self, stages: Sequence[Stage | Mapping[str, Any]] | Gradual, unit: str = "epoch"
    ) -> None:
        if unit not in UNITS:
            raise unknown("plan unit", str(unit), UNITS)
        self.unit = unit
        self.rule = stages if isinstance(stages, Gradual) else None
        self.stages = () if self.rule else tuple(self._stage(i, s) for i, s in enumerate(stages))
        self._check()

    def _stage(self, i: int, s: Stage | Mapping[str, Any]) -> Stage:
        if isinstance(s, Stage):
            return s
        if not isinstance(s, Mapping):
            raise ConfigError(f"plan.stages[{i}] must be a mapping with {self.unit!r} and 'train'")
        extra = set(s) - {self.unit, "train"}
        if extra:
            other = set(UNITS) - {self.unit}
            hint = f" (this plan counts in {self.unit}s; set unit: {other.pop()})" if extra & set(UNITS) else ""
            raise ConfigError(
                f"plan.stages[{i}]: unknown key {sorted(extra)[0]!r}{hint}; allowed: {self.unit}, train"
            )
        if self.unit not in s or "train" not in s:
            raise ConfigError(f"plan.stages[{i}] needs {self.unit!r} and 'train', got {dict(s)!r}")
        train = s["train"]
        train = (train,) if isinstance(train, str) else tuple(train)
        return Stage(_int(f"stages[{i}].{self.unit}", s[self.unit], 0), train)

    def _check(self) -> None:
        if not self.stages and self.rule is None:
            raise ConfigError("plan: needs at least one stage")
        first = 1 if self.unit == "epoch" else 0
        if self.stages and self.stages[0].start != first:
            raise ConfigError(
                f"plan: the first stage must start at {self.unit} {first}, got {self.stages[0].start}"
            )
        for a, b in zip(self.stages, self.stages[1:]):
            if b.start <= a.start:
                raise ConfigError(
                    f"plan: stages must start in increasing order, got {self.unit} {a.start} "
                    f"then {b.start}"
                )

    # -- standard plans ------------------------------------------------------------

    @classmethod
    def gradual(
        cls,
        every: int = 1,
        *,
        unit: str = "epoch",
        max_groups: int | None = None,
        also: Iterable[str] = (),
    ) -> Plan:
        """ULMFiT's gradual unfreezing: the head first, then one more group every ``every``.

        Stage ``k`` (0-based) starts at epoch ``1 + k*every`` (or after
        ``k*every`` steps) and trains ``top:k+1``, until ``max_groups`` groups
        (default: all) train. ``also`` adds selectors to every stage, e.g.
        ``["lora"]`` to train LoRA adapters throughout while whole groups
        unfreeze from the top.

        >>> [s.train for s in Plan.gradual(every=2).expand(3)]
        [('top:1',), ('top:2',), ('top:3',)]
        >>> [s.start for s in Plan.gradual(every=2).expand(3)]
        [1, 3, 5]
        """
        return cls(Gradual(every, max_groups, tuple(also)), unit=unit)

    @classmethod
    def full(cls) -> Plan:
        """Train everything from the start (plain fine-tuning)."""
        return cls([Stage(1, ("all",))])

    @classmethod
    def head_only(cls) -> Plan:
        """Train the top group only (a linear probe when the head is one layer)."""
        return cls([Stage(1, ("top:1",))])

    @classmethod
    def lora(cls) -> Plan:
        """Train the LoRA adapters and the head; the base weights stay frozen."""
        return cls([Stage(1, ("lora", "top:1"))])

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """Build a plan from a config mapping (the ``plan:`` section of a YAML file).

        Keys: ``kind`` (``full``, ``head_only``, ``gradual``, ``lora``,
        ``stages``), ``unit``, and for ``gradual``: ``every``, ``max_groups``,
        ``also``; for ``stages``: ``stages``.

        >>> Plan.from_dict({"kind": "gradual", "every": 2}).expand(2)[1].start
        3
        """
        d = dict(d)
        kind = d.pop("kind", "stages" if "stages" in d else "full")
        if kind not in KINDS:
            raise unknown("plan kind", str(kind), KINDS)
        unit = d.pop("unit", "epoch")
        allowed = {"gradual": {"every", "max_groups", "also"}, "stages": {"stages"}}.get(kind, set())
        for key in d:
            if key not in allowed:
                raise ConfigError(
                    f"plan: key {key!r} does not apply to kind {kind!r}; "
                    f"allowed: {', '.join(sorted(allowed | {'kind', 'unit'}))}"
                )
        if kind == "gradual":
            return cls.gradual(d.get("every", 1), unit=unit, max_groups=d.get("max_groups"),
                               also=d.get("also", ()))
        if kind == "stages":
            return cls(d.get("stages", []), unit=unit)
        plan = {"full": cls.full, "head_only": cls.head_only, "lora": cls.lora}[kind]()
        if unit == "step":
            plan = cls([Stage(0, plan.stages[0].train)], unit="step")
        return plan

    # -- use ---------------------------------------------------------------------------

    def expand(self, n_groups: int) -> tuple[Stage, ...]:
        """The concrete stages for a model with ``n_groups`` layer groups."""
        if self.rule is None:
            return self.stages
        r = self.rule
        top = n_groups if r.max_groups is None else min(r.max_groups, n_groups)
        first = 1 if self.unit == "epoch" else 0
        return tuple(Stage(first + k * r.every, (*r.also, f"top:{k + 1}")) for k in range(top))

    def stage_index(self, epoch: int, step: int, n_groups: int) -> int:
        """Index of the stage in force at ``epoch`` (1-based) after ``step`` steps."""
        at = epoch if self.unit == "epoch" else step
        index = 0
        for i, s in enumerate(self.expand(n_groups)):
            if s.start <= at:
                index = i
        return index

    def __repr__(self) -> str:
        if self.rule is not None:
            r = self.rule
            return (
                f"Plan.gradual(every={r.every}, unit={self.unit!r}, max_groups={r.max_groups}, "
                f"also={list(r.also)})"
            )
        body = ", ".join(f"{self.unit} {s.start}: {list(s.train)}" for s in self.stages)
        return f"Plan({body})"


def resolve(
    selectors: Sequence[str], groups: Sequence[LayerGroup], model: nn.Module
) -> tuple[list[LayerGroup], list[tuple[str, nn.Parameter]]]:
    """The whole groups and the single parameters (LoRA factors) that ``selectors`` train.

    Raises:
        ConfigError: an unknown selector (with the closest group name) or a
            ``top:K`` beyond the number of groups.
    """
    chosen: dict[int, LayerGroup] = {}
    extra: list[tuple[str, nn.Parameter]] = []
    names = [g.name for g in groups]
    for sel in selectors:
        if sel == "all":
            chosen.update(enumerate(groups))
        elif sel == "lora":
            lora = [(n, p) for n, p in model.named_parameters() if is_lora_param(n)]
            if not lora:
                raise ConfigError("plan: selector 'lora' but the model has no LoRA adapter (inject one)")
            extra += lora
        elif sel.startswith("top:"):
            k = sel[4:]
            if not k.isdigit() or int(k) < 1:
                raise ConfigError(f"plan: selector {sel!r} needs a positive count, e.g. 'top:2'")
            if int(k) > len(groups):
                raise ConfigError(f"plan: {sel!r} but the model has {len(groups)} layer groups")
            chosen.update((i, groups[i]) for i in range(len(groups) - int(k), len(groups)))
        else:
            hits = [i for i, n in enumerate(names) if fnmatchcase(n, sel)]
            if not hits:
                raise ConfigError(
                    f"plan: selector {sel!r} names no layer group{closest(sel, names)}; groups: "
                    f"{', '.join(names)}; or use 'top:K', 'all', 'lora'"
                )
            chosen.update((i, groups[i]) for i in hits)
    return [chosen[i] for i in sorted(chosen)], extra
