"""The Trainer: configuration, checks before training, ``fit``, ``evaluate``, ``predict``."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gradwise import _validate as check
from gradwise.errors import ConfigError, DataError, HeadError, unknown
from gradwise.nn._inputs import check_input_size
from gradwise.train import _distributed, _resume
from gradwise.train._data import LoaderBatches, TensorBatches, is_head, make_batches
from gradwise.train._eval import run_eval, run_predict
from gradwise.train._loop import Run
from gradwise.train._rng import seed_everything
from gradwise.train._shard import Shard
from gradwise.train._state import EVENTS, History, TrainState
from gradwise.train._threads import auto_threads, check_threads
from gradwise.train.metrics import Metric, get_metric

PRECISIONS = ("fp32", "bf16")
KINDS = ("output", "probs", "labels")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"Trainer: device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r} (training.device in a config) but CUDA is not available "
            "on this machine; use 'auto' or 'cpu'"
        )
    return dev


class Trainer:
    """Train a model with an optimizer and a loss (or head); callbacks add the rest.

    Args:
        model: the ``nn.Module`` to train; moved to ``device``.
        optimizer: a ``torch.optim.Optimizer`` over the model's parameters, or a
            factory ``params -> Optimizer`` called with ``model.parameters()``.
        loss: a gradwise head (then ``check_model`` and ``check_targets`` run
            before any step, targets go through ``prepare_target`` and metrics
            default to ``head.default_metrics``) or any ``(output, target) -> scalar``.
        epochs: passes over the training data.
        batch_size, shuffle: for the loader built from a Dataset or tuple
            (a DataLoader keeps its own).
        callbacks: objects handling events of :data:`EVENTS` (see ``Callback``).
        metrics: names (``"accuracy"``, ``"mse"``, ``"mae"``, ``"r2"``) or
            ``Metric`` objects; None means the head's defaults (none for a plain loss).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available).
        grad_accum: batches per optimizer step; each batch's loss is divided by
            the size of its accumulation group, so a step sees the mean gradient.
        clip_grad_norm: clip the global gradient norm to this value before each step.
        precision: ``"fp32"`` or ``"bf16"`` (``torch.autocast`` on the device, CPU too).
        seed: seeds ``random``, NumPy, torch and the shuffle generator at the
            start of ``fit`` for a reproducible run (seed before building the
            model for reproducible initial weights).
        scheduler: a ``torch.optim.lr_scheduler`` object or a factory
            ``optimizer -> scheduler``; stepped after every optimizer step or
            every epoch (``scheduler_per``); ``ReduceLROnPlateau`` steps per
            epoch on ``val_loss`` (``train_loss`` without validation data).
        schedule: a :mod:`gradwise.schedules` schedule, or a function
            ``total_steps -> schedule`` (such as a schedule config's ``build``),
            attached at the start of ``fit`` and stepped every optimizer step.
            ``total_steps`` is ``epochs × steps_per_epoch`` of the loader
            ``fit`` builds (world size, ``grad_accum`` and ``drop_last``
            included), so the schedule ends exactly at the last step. Not
            together with ``scheduler``.
        distributed: ``"auto"`` trains with DistributedDataParallel when
            ``torchrun`` started several processes (or a process group with
            several ranks exists); ``True`` always, ``False`` never. Under DDP
            ``batch_size`` is per process: the global batch is
            ``batch_size × world_size`` (see ``docs/distributed.md``).
            ``"ddp"`` is ``True``; ``"fsdp"`` (or ``gradwise.train.FSDP(...)``
            for mixed precision and activation checkpointing) shards the
            parameters, gradients and optimizer state over the processes.
        threads: torch CPU threads during ``fit``: a count, or ``"auto"`` for the
            rule of :func:`~gradwise.train.choose_threads` (``docs/train.md``).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Linear(3, 1)
        >>> X, y = torch.randn(64, 3), torch.randn(64, 1)
        >>> t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss(),
        ...             epochs=2, batch_size=16, seed=0)
        >>> [r["step"] for r in t.fit((X, y))]
        [4, 8]
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | Callable[[Any], torch.optim.Optimizer],
        loss: Callable[[Any, Any], Tensor],
        *,
        epochs: int = 1,
        batch_size: int = 32,
        shuffle: bool = True,
        callbacks: Iterable[Any] = (),
        metrics: Sequence[str | Metric] | None = None,
        device: str | torch.device = "cpu",
        grad_accum: int = 1,
        clip_grad_norm: float | None = None,
        precision: str = "fp32",
        seed: int | None = None,
        scheduler: Any = None,
        scheduler_per: str = "step",
        schedule: Any = None,
        distributed: Any = "auto",
        threads: int | str = "auto",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Trainer: model must be a torch.nn.Module, got {type(model).__name__}")
        self.epochs = check.integer("Trainer", "epochs", epochs, minimum=1)
        self.batch_size = check.integer("Trainer", "batch_size", batch_size, minimum=1)
        self.grad_accum = check.integer("Trainer", "grad_accum", grad_accum, minimum=1)
        self.shuffle = check.flag("Trainer", "shuffle", shuffle)
        self.clip_grad_norm = check.number(
            "Trainer", "clip_grad_norm", clip_grad_norm, low=0.0, low_open=True, optional=True
        )
        if precision not in PRECISIONS:
            raise unknown("precision", str(precision), PRECISIONS)
        if scheduler_per not in ("step", "epoch"):
            raise unknown("scheduler_per", str(scheduler_per), ("step", "epoch"))
        check.integer("Trainer", "seed", seed, optional=True)
        self.precision, self.scheduler_per, self.seed = precision, scheduler_per, seed
        self.distributed = _distributed.check_mode(distributed)
        self.threads = check_threads(threads)
        self.device = _distributed.local_device(resolve_device(device), distributed)
        if (
            precision == "bf16"
            and self.device.type == "cuda"
            and not torch.cuda.is_bf16_supported()
        ):
            raise ConfigError("Trainer: precision='bf16' but this GPU does not support bfloat16")

        self.model = model.to(self.device)
        self.head = loss if is_head(loss) else None
        if not callable(loss):
            raise TypeError(
                f"Trainer: loss must be a gradwise head or a callable (output, target) -> loss, "
                f"got {type(loss).__name__}"
            )
        self.loss = loss.to(self.device) if isinstance(loss, nn.Module) else loss
        self.optimizer = self._build_optimizer(optimizer)
        self.scheduler = scheduler(self.optimizer) if _is_factory(scheduler) else scheduler
        if schedule is not None and scheduler is not None:
            raise ConfigError("Trainer: give a schedule or a scheduler, not both")
        self.schedule = schedule
        if self.scheduler is not None and not hasattr(self.scheduler, "step"):
            raise TypeError(
                f"Trainer: scheduler must be a torch LR scheduler or a factory optimizer -> "
                f"scheduler, got {type(scheduler).__name__}"
            )
        if metrics is None:
            metrics = tuple(getattr(self.head, "default_metrics", ()))
        if isinstance(metrics, (str, Metric)):
            metrics = (metrics,)
        self.metrics = tuple(metrics)
        self._make_metrics()  # unknown names fail here, not after an epoch
        self.callbacks = sorted(callbacks, key=lambda cb: getattr(cb, "order", 0))
        for cb in self.callbacks:
            if not any(hasattr(cb, ev) for ev in EVENTS):
                raise TypeError(
                    f"Trainer: callback {type(cb).__name__} handles no event; "
                    f"callbacks implement some of: {', '.join(EVENTS)}"
                )

    def _attach_schedule(self, batches: int | None) -> Any:
        """Attach ``schedule`` over this run's optimizer steps, counted from the loader."""
        from gradwise.schedules import Schedule, attach

        sched = self.schedule
        if not isinstance(sched, Schedule):
            if batches is None:
                raise ConfigError(
                    "Trainer: the schedule needs the run's length, but the train data has no len(); "
                    "pass a built schedule with its own total_steps"
                )
            sched = sched(self.epochs * math.ceil(batches / self.grad_accum))
        return attach(self.optimizer, sched)

    def _build_optimizer(self, optimizer: Any) -> torch.optim.Optimizer:
        if not isinstance(optimizer, torch.optim.Optimizer):
            if not callable(optimizer):
                raise TypeError(
                    "Trainer: optimizer must be a torch.optim.Optimizer or a factory "
                    f"params -> Optimizer, got {type(optimizer).__name__}"
                )
            optimizer = optimizer(self.model.parameters())
            if not isinstance(optimizer, torch.optim.Optimizer):
                raise TypeError(
                    f"Trainer: the optimizer factory returned {type(optimizer).__name__}, "
                    "not a torch.optim.Optimizer"
                )
        mine = {id(p) for p in self.model.parameters()}
        if not any(id(p) in mine for g in optimizer.param_groups for p in g["params"]):
            raise ConfigError(
                "Trainer: the optimizer holds none of the model's parameters; build it from "
                "model.parameters() (or pass a factory such as lambda p: torch.optim.SGD(p, lr=0.1))"
            )
        return optimizer

    def _make_metrics(self) -> list[Metric]:
        # Metric objects hold running sums: every use gets its own copy.
        return [
            get_metric(m, self.head) if isinstance(m, str) else copy.deepcopy(get_metric(m))
            for m in self.metrics
        ]

    def _amp(self) -> Callable[[], Any]:
        if self.precision == "bf16":
            dev = self.device.type
            return lambda: torch.autocast(dev, dtype=torch.bfloat16)
        return contextlib.nullcontext

    def _batches(
        self, data: Any, what: str, *, shuffle: bool, generator: Any, target: bool = True,
        shard: Shard | None = None,
    ) -> tuple[TensorBatches | LoaderBatches, Any]:
        prepare = self.head.prepare_target if self.head is not None else None
        return make_batches(
            data,
            what=what,
            batch_size=self.batch_size,
            shuffle=shuffle,
            device=self.device,
            generator=generator,
            prepare=prepare,
            with_target=target,
            shard=shard,
        )

    def _check_targets(self, batches: Any, raw: Any, what: str) -> None:
        if self.head is None:
            return
        y = raw if raw is not None else batches.first_target()
        try:
            self.head.check_targets(y.cpu() if isinstance(y, Tensor) else y)
        except HeadError as exc:
            raise HeadError(f"{what} targets: {exc}") from exc

    # -- fit ---------------------------------------------------------------------

    def fit(self, train: Any, val: Any = None, *, resume: Any = None) -> History:
        """Train for ``epochs`` epochs; returns the epoch records as a :class:`History`.

        Args:
            train: a DataLoader, a Dataset or a tuple ``(X, y)``.
            val: same kinds; evaluated after each epoch (``val_loss``, ``val_<metric>``).
            resume: a checkpoint file, or a directory (its latest checkpoint),
                written by :class:`Checkpoint`; training continues from there
                so that, on CPU, the final weights equal those of a run that
                never stopped.

        Under ``torchrun`` (see ``distributed``) every process calls ``fit``
        with the same arguments; each trains on its shard of ``train`` and
        ``val``, and the epoch records hold the numbers of all processes.
        """
        if self.head is not None:
            self.head.check_model(self.model)
        dist = _distributed.setup(self.distributed, self.device)
        if dist is not None:
            _distributed.check_metrics(self._make_metrics())
            dist.prepare(self.model, self.optimizer)  # FSDP shards before the run holds params
        generator = torch.Generator()
        if self.seed is not None and resume is None:
            # Each rank its own dropout/augmentation stream; one shuffle for all.
            seed_everything(self.seed if dist is None else self.seed + dist.rank)
            generator.manual_seed(self.seed)
        else:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            generator.manual_seed(seed if dist is None else dist.broadcast(seed))
        train_b, raw = self._batches(
            train,
            "train",
            shuffle=self.shuffle,
            generator=generator,
            shard=None if dist is None else dist.shard(pad=True),
        )
        self._check_targets(train_b, raw, "train")
        check_input_size(self.model, getattr(train_b, "inputs", (None,))[0], "train inputs")
        if dist is not None:
            dist.warn_unsharded(getattr(train_b, "loader", None))
        val_b = None
        if val is not None:
            val_b, vraw = self._batches(
                val,
                "val",
                shuffle=False,
                generator=None,
                shard=None if dist is None else dist.shard(pad=False),
            )
            self._check_targets(val_b, vraw, "val")
        try:
            nb: int | None = len(train_b)
        except TypeError:
            nb = None
        if nb == 0:
            raise DataError("train data has no batches")
        if self.schedule is not None and self.scheduler is None:
            self.scheduler = self._attach_schedule(nb)
        state = TrainState(
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            device=self.device,
            epochs=self.epochs,
            batches_per_epoch=nb,
            steps_per_epoch=None if nb is None else math.ceil(nb / self.grad_accum),
        )
        run = Run(
            state=state,
            loss_fn=self.loss,
            train=train_b,
            val=val_b,
            train_metrics=self._make_metrics(),
            val_metrics=self._make_metrics(),
            callbacks=self.callbacks,
            generator=generator,
            grad_accum=self.grad_accum,
            clip_grad_norm=self.clip_grad_norm,
            scheduler_per=self.scheduler_per,
            amp=self._amp(),
            dist=dist,
        )
        path = None if resume is None else _resume.resume(run, resume, dist)
        if dist is not None:
            run.ddp = dist.wrap(self.model)
        try:
            with auto_threads(self.model, train_b, self.threads):  # by work per step, free cores
                self.history = run.fit(None if path is None else str(path))
        finally:
            run.ddp = None  # the wrapper (and its gradient hooks) lives for one fit
        return self.history

    # -- evaluate / predict ----------------------------------------------------------

    def evaluate(self, data: Any) -> dict[str, Any]:
        """Mean loss and metrics over ``data`` in eval mode, without gradients.

        ``data`` is one dataset (returns ``{"loss": ..., "<metric>": ...}``) or a
        dict ``name -> dataset`` (returns ``{name: {...}}``), e.g. to measure
        forgetting on several sets after fine-tuning. The loss is the mean over
        examples: Σ_batches loss_b·n_b / Σ n_b (exact for mean-reduced losses).

        Example:
            >>> # trainer.evaluate({"old_task": (X0, y0), "new_task": (X1, y1)})
        """
        if isinstance(data, Mapping):
            return {name: self.evaluate(d) for name, d in data.items()}
        batches, raw = self._batches(data, "evaluate", shuffle=False, generator=None)
        self._check_targets(batches, raw, "evaluate")
        return run_eval(self.model, self.loss, batches, self._make_metrics(), self._amp())

    def predict(self, data: Any, kind: str = "output") -> Tensor:
        """Model outputs over ``data`` in eval mode, concatenated on the CPU.

        Args:
            data: inputs ``X`` (tensor/array), a tuple ``(X, y)`` (``y`` ignored),
                a Dataset or a DataLoader (of ``(inputs..., target)`` or inputs).
            kind: ``"output"`` (raw), ``"probs"`` (``head.probs``) or ``"labels"``
                (``head.predict``); the last two need a head as the loss.
        """
        if kind not in KINDS:
            raise unknown("predict kind", str(kind), KINDS)
        if kind != "output" and self.head is None:
            raise ConfigError(
                f"predict(kind={kind!r}) needs a gradwise head as the Trainer's loss; "
                "with a plain loss use kind='output'"
            )
        batches, _ = self._batches(data, "predict", shuffle=False, generator=None, target=False)
        if isinstance(batches, LoaderBatches):
            batches.prepare = None
        return run_predict(self.model, batches, self._amp(), self.head, kind)


def _is_factory(obj: Any) -> bool:
    return callable(obj) and not hasattr(obj, "step")
