"""``GradualUnfreezing``: a trainer callback that runs a :class:`Plan`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from gradwise._torch_compat import set_last_lr
from gradwise.errors import ConfigError
from gradwise.finetune._freeze import BATCHNORM_MODES, count_trainable, freeze, unfreeze
from gradwise.finetune._groups import LayerGroup, layer_groups
from gradwise.finetune._plan import Plan, Stage, resolve
from gradwise.train import Callback, Control, TrainState


def _restartable(scheduler: Any) -> bool:
    from gradwise.schedules import ScheduledLR

    return isinstance(scheduler, (ScheduledLR, torch.optim.lr_scheduler.LambdaLR))


def with_length(schedule: Any, total_steps: int) -> Any:
    """``schedule`` stretched to ``total_steps`` when it has that field, else itself."""
    fields = {f.name for f in dataclasses.fields(schedule)} if dataclasses.is_dataclass(schedule) else set()
    if "total_steps" not in fields:
        return schedule
    try:
        return dataclasses.replace(schedule, total_steps=total_steps)
    except ConfigError as exc:
        raise ConfigError(f"restart_schedule: a stage of {total_steps} steps is too short: {exc}") from None


def restart_schedule(scheduler: Any, schedule: Any = None) -> list[float]:
    """Put a closed-form scheduler back to step 0 and set each group's lr to ``base * m(0)``.

    Works for :func:`gradwise.schedules.attach` schedulers and torch's
    ``LambdaLR``, whose rate is a function of the step count alone; so a
    slanted-triangular or one-cycle schedule starts over at a new stage.
    ``schedule`` replaces an attached scheduler's schedule (e.g. one whose
    ``total_steps`` is the new stage's length). Returns the new rates.
    """
    from gradwise.schedules import ScheduledLR

    if isinstance(scheduler, ScheduledLR):
        if schedule is not None:
            scheduler.schedule = schedule
        factors = [float(scheduler.schedule(0))] * len(scheduler.base_lrs)
    elif isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        factors = [float(f(0)) for f in scheduler.lr_lambdas]
    else:
        raise ConfigError(
            "restart_schedule needs a scheduler from gradwise.schedules.attach (or torch's "
            f"LambdaLR), got {type(scheduler).__name__}"
        )
    lrs = [base * f for base, f in zip(scheduler.base_lrs, factors)]
    scheduler.last_epoch = 0
    for group, lr in zip(scheduler.optimizer.param_groups, lrs):
        group["lr"] = lr
    set_last_lr(scheduler, lrs)
    return lrs


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,}"


class GradualUnfreezing(Callback):
    """Run a fine-tuning plan: freeze and unfreeze layer groups at the planned epochs/steps.

    Without a plan it does ULMFiT's gradual unfreezing (Howard & Ruder 2018):
    the top group (the head) trains in epoch 1, one more group joins every
    ``every`` epochs, until the whole model trains. Groups not in the current
    stage are frozen with :func:`freeze` (no gradient, no optimizer state, no
    weight decay), so build the optimizer over every parameter (e.g. with
    :func:`discriminative_lr`) and the plan decides what moves.

    Each change of stage (the first one included) emits an ``"unfreeze"``
    event record (stage, selectors, group names, trainable count), which
    :class:`gradwise.train.MetricsLogger` writes to ``metrics.jsonl`` and the
    report shows. The stage in force is saved in checkpoints; on resume the
    stage is applied again without a new event.

    Args:
        every: epochs per stage of the default gradual plan.
        plan: a :class:`Plan` or its config mapping; overrides ``every``.
        groups: the layer groups (:func:`layer_groups` by default), or patterns for it.
        batchnorm: how frozen groups treat batch norm (see :data:`BATCHNORM_MODES`).
        restart_schedule: at each new stage, restart the scheduler at step 0,
            its ``total_steps`` set to the stage's length (slanted-triangular or
            one-cycle per stage); needs a scheduler from :func:`gradwise.schedules.attach`.

    Example:
        >>> # groups = discriminative_lr(model, lr=1e-3)
        >>> # Trainer(model, adamw(groups), head, epochs=6,
        >>> #         callbacks=[GradualUnfreezing(every=1)]).fit(train)
    """

    order = -10  # set what trains before other callbacks look at the model

    def __init__(
        self,
        every: int = 1,
        *,
        plan: Plan | Mapping[str, Any] | None = None,
        groups: Sequence[LayerGroup] | Sequence[str] | Mapping[str, Any] | None = None,
        batchnorm: str = "eval",
        restart_schedule: bool = False,
    ) -> None:
        if plan is None:
            plan = Plan.gradual(every)
        elif isinstance(plan, Mapping):
            plan = Plan.from_dict(plan)
        if not isinstance(plan, Plan):
            raise TypeError(f"GradualUnfreezing: plan must be a Plan or a mapping, got {type(plan).__name__}")
        if batchnorm not in BATCHNORM_MODES:
            raise ConfigError(f"GradualUnfreezing: batchnorm must be one of {BATCHNORM_MODES}, got {batchnorm!r}")
        self.plan, self.batchnorm = plan, batchnorm
        self.restart = bool(restart_schedule)
        self._group_spec = groups
        self.groups: list[LayerGroup] | None = None
        self.stages: tuple[Stage, ...] = ()
        self.stage: int | None = None  # index of the stage in force (saved in checkpoints)
        self._applied: int | None = None  # index applied to the model in this fit
        self._schedules: list[Any] = []  # per stage, when restart_schedule

    def _setup(self, model: nn.Module) -> None:
        spec = self._group_spec
        given = [g for g in spec if isinstance(g, LayerGroup)] if spec is not None else []
        if spec is not None and len(given) == len(spec):
            # By name: FSDP replaces the parameter objects the groups were built from.
            named = dict(model.named_parameters())
            self.groups = [
                dataclasses.replace(g, params=tuple((n, named.get(n, p)) for n, p in g.params))
                for g in given
            ]
        else:
            self.groups = layer_groups(model, spec)  # type: ignore[arg-type]
        self.stages = self.plan.expand(len(self.groups))
        for s in self.stages:  # a bad selector fails before the first step
            resolve(s.train, self.groups, model)

    def apply(self, model: nn.Module, index: int) -> tuple[list[LayerGroup], int]:
        """Freeze and unfreeze ``model`` as stage ``index`` says; returns (trained groups, trainable numel)."""
        if self.groups is None:
            self._setup(model)
        chosen, extra = resolve(self.stages[index].train, self.groups, model)
        ids = {id(g) for g in chosen}
        for g in self.groups:
            if id(g) in ids:
                unfreeze(g)
            else:
                freeze(g, batchnorm=self.batchnorm)
        for _, p in extra:
            p.requires_grad_(True)
        return chosen, count_trainable(model)[0]

    def _update(self, state: TrainState) -> Control | None:
        index = self.plan.stage_index(state.epoch, state.step, len(self.groups))
        if index == self._applied:
            return None
        chosen, trainable = self.apply(state.model, index)
        self._applied = index
        previous, self.stage = self.stage, index
        if previous == index:  # re-applied after a resume: no new event
            return None
        if self.restart:
            restart_schedule(state.scheduler, self._schedules[index] if self._schedules else None)
        stage = self.stages[index]
        total = count_trainable(state.model)[1]
        at = f"epoch {state.epoch}" if self.plan.unit == "epoch" else f"step {state.step}"
        names = [g.name for g in chosen]
        shown = ", ".join(names) if len(names) <= 4 else f"{names[0]} ... {names[-1]} ({len(names)} groups)"
        if any(s == "lora" for s in stage.train):
            shown = "LoRA adapters" + (f" + {shown}" if shown else "")
        return Control.emit(
            "unfreeze",
            f"stage {index + 1}/{len(self.stages)} from {at}: training {shown}; "
            f"{_millions(trainable)} of {_millions(total)} parameters",
            stage=index + 1,
            stages=len(self.stages),
            train=list(stage.train),
            groups=names,
            trainable=trainable,
            total=total,
        )

    # -- events --------------------------------------------------------------------

    def on_fit_start(self, state: TrainState) -> None:
        self._setup(state.model)
        self._applied = None
        if not state.resumed:
            self.stage = None
        if self.restart:
            if not _restartable(state.scheduler):
                raise ConfigError(
                    "GradualUnfreezing(restart_schedule=True) needs the Trainer's scheduler to come "
                    f"from gradwise.schedules.attach, got {type(state.scheduler).__name__}"
                )
            self._schedules = self._stage_schedules(state)

    def _stage_schedules(self, state: TrainState) -> list[Any]:
        """The attached schedule stretched over each stage (all stages checked now)."""
        base = getattr(state.scheduler, "schedule", None)
        spe = state.steps_per_epoch
        if base is None or spe is None:
            return []
        total = state.epochs * spe
        starts = [(s.start - 1) * spe if self.plan.unit == "epoch" else s.start for s in self.stages]
        ends = [*starts[1:], total]
        return [with_length(base, max(end - start, 1)) for start, end in zip(starts, ends)]

    def on_epoch_start(self, state: TrainState) -> Control | None:
        return self._update(state)

    def on_step_end(self, state: TrainState) -> Control | None:
        if self.plan.unit == "step":
            return self._update(state)
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stage = state.get("stage")
