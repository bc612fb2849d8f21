"""Drive a torch optimizer's learning rates with a schedule: `attach`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from gradwise.errors import ConfigError
from gradwise.optim import set_lr
from gradwise.schedules._base import Schedule
from gradwise.schedules._registry import schedule as build_schedule

PER = ("step", "epoch")


class ScheduledLR(LRScheduler):
    """A torch ``LRScheduler`` whose lr is ``initial_lr * schedule(last_epoch)`` per group.

    Every param group keeps its own base rate (``group["initial_lr"]``, set
    from ``group["lr"]`` when the scheduler is created), so the ratios between
    groups (discriminative learning rates) hold at every step. The value is
    computed in closed form from the step count, never from the previous lr,
    so it does not drift and resumes exactly.

    ``per`` (``"step"`` or ``"epoch"``) records when the owner calls
    :meth:`step`: after each optimizer step or after each epoch.

    State: :meth:`state_dict` stores the step count, base rates, last rates,
    ``per`` and the schedule as its config dict (plain values, so it loads
    with ``torch.load(weights_only=True)``). :meth:`load_state_dict` rebuilds
    the schedule from that config, replacing the one given at construction;
    a custom callable that is not a :class:`Schedule` is not stored and must
    be given again. Loading also writes the saved rates back into the
    optimizer's groups, so it does not matter whether the optimizer's state
    is loaded before or after.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: Callable[[int], float],
        per: str = "step",
        last_epoch: int = -1,
    ) -> None:
        if not callable(schedule):
            raise ConfigError(
                f"attach: schedule must be a callable step -> multiplier (e.g. "
                f"gradwise.schedules.cosine(...)), got {schedule!r}"
            )
        if per not in PER:
            raise ConfigError(f"attach: per must be 'step' or 'epoch', got {per!r}")
        self.schedule = schedule
        self.per = per
        if last_epoch == -1:
            # The groups' lr now is the base, even where an earlier scheduler left its
            # initial_lr (torch keeps an existing one): lr has one home, the group.
            for group in optimizer.param_groups:
                group.pop("initial_lr", None)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | torch.Tensor]:
        group_lrs = getattr(self.schedule, "group_lrs", None)  # per-group options (cyclic's base_lr)
        if group_lrs is not None:
            return group_lrs(self.base_lrs, self.last_epoch, self.optimizer.param_groups)
        factor = float(self.schedule(self.last_epoch))
        return [base_lr * factor for base_lr in self.base_lrs]

    # torch calls this when step(epoch) is given an explicit epoch; ours is closed form anyway.
    _get_closed_form_lr = get_lr

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "schedule")}
        state["schedule"] = self.schedule.to_config() if _has_config(self.schedule) else None
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        config = state.pop("schedule", None)
        if state.get("per", self.per) not in PER:
            raise ConfigError(
                f"scheduler state: per must be 'step' or 'epoch', got {state['per']!r}"
            )
        self.__dict__.update(state)
        if config is not None:
            config = dict(config)
            self.schedule = build_schedule(config.pop("name"), **config)
        set_lr(self.optimizer, [float(lr) for lr in self.get_last_lr()])


def _has_config(schedule: Callable[[int], float]) -> bool:
    if not isinstance(schedule, Schedule):
        return False
    try:
        schedule.to_config()
    except ConfigError:
        return False
    return True


def attach(
    optimizer: torch.optim.Optimizer, schedule: Callable[[int], float], per: str = "step"
) -> ScheduledLR:
    """Return a torch ``LRScheduler`` that sets each group's lr to ``initial_lr * schedule(t)``.

    Args:
        optimizer: any ``torch.optim.Optimizer`` (gradwise's included). Its
            groups' current ``lr`` become their base rates; the scheduler
            immediately sets ``lr = base * schedule(0)``.
        schedule: a gradwise schedule or any callable ``step -> multiplier``.
        per: ``"step"`` (call ``scheduler.step()`` after every optimizer step)
            or ``"epoch"`` (after every epoch); stored as ``scheduler.per``.

    Call ``scheduler.step()`` after ``optimizer.step()``, as with any torch
    scheduler. Resume with ``scheduler.load_state_dict(state)``; see
    :class:`ScheduledLR` for what the state holds.

    >>> import torch
    >>> from gradwise.schedules import attach, linear_warmup
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> sched = attach(opt, linear_warmup(warmup_steps=2))
    >>> lrs = []
    >>> for _ in range(3):
    ...     lrs.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
    >>> lrs
    [0.0, 0.05, 0.1]
    """
    return ScheduledLR(optimizer, schedule, per=per)
