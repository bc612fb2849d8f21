"""What every recipe does to set up a run: its directory, callbacks, optimizer and schedule.

The train, finetune, instruct and linear recipes call these, so that a run
directory is claimed, an optimizer built and a schedule attached the same way
everywhere. The schedule is handed to the :class:`~gradwise.train.Trainer`,
which counts the run's steps from its own loader; no recipe predicts them.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from gradwise.config import CallbacksConfig, OptimizerConfigBase, ScheduleConfigBase
from gradwise.errors import ConfigError

# Files a run writes; a fresh run removes these left by an older run of the same name.
RUN_FILES = (
    "config.yaml", "metrics.jsonl", "metrics.csv", "results.json", "timings.json", "report.html",
    "lr_find.png", "model.safetensors", "diagnostics.json", "generations.jsonl",
)  # fmt: skip
RUN_DIRS = ("checkpoints", "plots", "model", "adapter")


def claim_run_dir(run_dir: Path, *, overwrite: bool = False, resume: bool = False) -> bool:
    """Make ``run_dir`` ready for a run; return True when a fresh directory was created.

    An existing run is never replaced silently: ``overwrite`` clears the files
    a run writes, ``resume`` keeps them; otherwise a :class:`ConfigError` says
    how to proceed.
    """
    run_dir = Path(run_dir)
    if resume:
        if not any((run_dir / "checkpoints").glob("*")):
            raise ConfigError(
                f"--resume: {run_dir} has no checkpoint to resume from; run without --resume "
                "(or enable callbacks.checkpoint)"
            )
        return False
    exists = run_dir.exists() and any(run_dir.iterdir())
    if exists and not overwrite:
        raise ConfigError(
            f"{run_dir} already holds a run; pass --overwrite to replace it, --resume to continue "
            f"it, or give a new name with --set name=..."
        )
    if exists:
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        for sub in RUN_DIRS:
            shutil.rmtree(run_dir / sub, ignore_errors=True)
    fresh = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    return fresh


@contextlib.contextmanager
def cleanup_on_failure(run_dir: Path, fresh: bool) -> Iterator[None]:
    """Remove a freshly made ``run_dir`` when the run fails, so no half-made run is left."""
    try:
        yield
    except BaseException:
        if fresh:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def build_optimizer(cfg: OptimizerConfigBase, params: Any, lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer a config names over ``params`` (named parameters or param groups).

    ``lr`` replaces the config's (``lr: auto`` before lr_find has chosen one).
    Only the options the config sets are passed: the alias's defaults fill the rest.
    """
    from gradwise import optim as goptim

    options = cfg.options()
    if lr is not None:
        options["lr"] = lr
    if options.get("lr") == "auto":
        raise ConfigError("optimizer.lr: 'auto' must be resolved by lr_find before the optimizer is built")
    return goptim.build(params, cfg.name, **options)


def schedule_factory(cfg: ScheduleConfigBase | None) -> Any:
    """``total_steps -> Schedule`` for the Trainer's ``schedule``, or None without a schedule."""
    return None if cfg is None else cfg.build


def callbacks_from_config(
    cb: CallbacksConfig, run_dir: Path, *, progress: bool = True, guard: bool = True
) -> tuple[list[Any], list[Any]]:
    """The logger, checkpoint, early stopping and guard a config asks for, and the progress bar.

    Returns ``(callbacks, tail)``: a recipe puts its own callbacks between the two.
    """
    from gradwise.train import (
        Checkpoint,
        DivergenceGuard,
        EarlyStopping,
        MetricsLogger,
        ProgressBar,
    )

    callbacks: list[Any] = [MetricsLogger(run_dir, log_every=cb.log_every, tensorboard=cb.tensorboard)]
    if cb.checkpoint.enabled:
        c = cb.checkpoint
        callbacks.append(
            Checkpoint(run_dir / "checkpoints", every_n_steps=c.every_n_steps, every_epoch=c.every_epoch, keep=c.keep)
        )
    if cb.early_stopping is not None:
        es = cb.early_stopping
        callbacks.append(
            EarlyStopping(es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta,
                          restore_best=es.restore_best)
        )  # fmt: skip
    if guard and cb.divergence_guard.enabled:
        callbacks.append(DivergenceGuard(**cb.divergence_guard.model_dump(exclude={"enabled"})))
    tail = [ProgressBar()] if progress and cb.progress else []
    return callbacks, tail
