"""Recipe: ``gradwise train CONFIG``, a supervised MLP run from a YAML config.

Reads top to bottom: data -> split -> standardize (fitted on train only) ->
head -> model -> optimizer -> callbacks -> fit -> evaluate -> report.
Everything lands in ``runs/NAME/``: ``config.yaml``, ``metrics.jsonl``,
``metrics.csv``, ``checkpoints/``, ``plots/*.png``, ``results.json`` and
``report.html``.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from gradwise import data as gdata
from gradwise import nn as gnn
from gradwise.config import DataConfig, OptimizerConfig, RunConfig, dump_config
from gradwise.report import Section, write_report
from gradwise.train import (
    Checkpoint,
    EarlyStopping,
    MetricsLogger,
    ProgressBar,
    Trainer,
    is_main_process,
    world_size,
)


@dataclass
class TrainResult:
    """What a run produced: its directory, final metrics per split and the model."""

    run_dir: Path
    results: dict[str, dict[str, float]]
    model: torch.nn.Module
    history: Any


def load_table(cfg: DataConfig) -> gdata.Table:
    """Load the dataset a config names: a built-in, a CSV or an NPZ file."""
    if (cfg.name is None) == (cfg.path is None):
        from gradwise.errors import ConfigError

        raise ConfigError("data: give exactly one of 'name' (a built-in dataset) or 'path'")
    if cfg.name is not None:
        return gdata.load(cfg.name, **cfg.options)
    path = Path(cfg.path)
    if path.suffix.lower() == ".npz":
        return gdata.read_npz(path, task=cfg.task)
    if cfg.target is None:
        from gradwise.errors import ConfigError

        raise ConfigError(f"data.target: a CSV file needs the name of its target column ({path})")
    return gdata.read_csv(path, cfg.target, task=cfg.task)


def build_optimizer(cfg: OptimizerConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Build the optimizer a config names, from :mod:`gradwise.optim`."""
    from gradwise import optim as goptim
    from gradwise import regularization as greg

    # only the fields the config sets: an option the optimizer lacks (momentum
    # for adam) is then reported by name instead of silently ignored
    hyper = cfg.model_dump(exclude_unset=True, exclude={"name", "prox"})
    hyper["lr"] = cfg.lr
    if cfg.prox is not None:
        hyper["prox"] = greg.penalty(cfg.prox.kind, cfg.prox.lam, cfg.prox.alpha)
    return goptim.build(list(model.named_parameters()), cfg.name, **hyper)


def build_model(cfg: RunConfig, n_features: int, out_features: int) -> torch.nn.Module:
    m = cfg.model
    return gnn.MLP(
        n_features,
        m.hidden,
        out_features,
        activation=m.activation,
        dropout=m.dropout,
        batchnorm=m.batchnorm,
        **m.activation_kw,
    )


@dataclass
class Prepared:
    """Everything a run needs before its first step."""

    parts: Any
    head: Any
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer


def prepare(cfg: RunConfig) -> Prepared:
    """Data (split, standardized on train only), head, seeded model and optimizer.

    With ``optimizer.lr: auto`` the optimizer starts at a placeholder lr;
    :func:`choose_lr` replaces it.
    """
    table = load_table(cfg.data)
    parts = gdata.split(table, val=cfg.data.val, test=cfg.data.test, seed=cfg.data.seed)
    if cfg.data.standardize:
        parts, _ = gdata.standardize(parts)
    head = gnn.head(cfg.head or table.task, table.out_features)
    torch.manual_seed(cfg.training.seed)  # model init is part of the run's seed
    model = build_model(cfg, table.n_features, head.out_features)
    opt_cfg = cfg.optimizer
    if opt_cfg.lr == "auto":
        opt_cfg = opt_cfg.model_copy(update={"lr": 1e-3})
    optimizer = build_optimizer(opt_cfg, model)
    return Prepared(parts, head, model, optimizer)


def choose_lr(cfg: RunConfig, prep: Prepared, plot_path: Path | None = None) -> Any:
    """Run the LR range test on the train split and set every group's lr to its suggestion.

    Model, optimizer and RNG states are restored by :func:`lr_find`, so the run
    that follows starts exactly as it would have with that lr written in the
    config. Returns the :class:`LRFinderResult`.
    """
    from gradwise.schedules import lr_find

    found = lr_find(
        prep.model,
        prep.head,
        prep.parts.train.tensors(),
        prep.optimizer,
        batch_size=cfg.training.batch_size,
    )
    for group, lr in zip(prep.optimizer.param_groups, found.group_lrs):
        group["lr"] = lr
    if plot_path is not None:
        found.plot(plot_path)
    return found


def _steps_per_epoch(n: int, cfg: RunConfig) -> int:
    # under torchrun each process sees ceil(n / world) examples; batch_size is per process
    batches = math.ceil(math.ceil(n / world_size()) / cfg.training.batch_size)
    return math.ceil(batches / cfg.training.grad_accum)


def run(
    cfg: RunConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    extra_callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Run a config end to end and write its run directory.

    ``extra_callbacks`` are added after the config's own (a sweep adds its
    pruning callback this way).
    """
    run_dir = cfg.run_dir
    ckpt_dir = run_dir / "checkpoints"
    can_resume = resume and ckpt_dir.is_dir() and any(ckpt_dir.iterdir())
    main = is_main_process()  # under torchrun only rank 0 writes files
    if not can_resume and main:
        # a fresh run never mixes its records with an older run of the same name
        for stale in ("metrics.jsonl", "metrics.csv", "results.json", "report.html", "lr_find.png"):
            (run_dir / stale).unlink(missing_ok=True)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)

    prep = prepare(cfg)
    extra_sections: list[Section] = []
    previous = run_dir / "config.yaml"
    if cfg.optimizer.lr == "auto" and can_resume and previous.exists():
        # the checkpoint carries the lr chosen when the run started; keep its record
        old_lr = yaml.safe_load(previous.read_text()).get("optimizer", {}).get("lr")
        if isinstance(old_lr, (int, float)):
            cfg = cfg.model_copy(
                update={"optimizer": cfg.optimizer.model_copy(update={"lr": float(old_lr)})}
            )
    if cfg.optimizer.lr == "auto":
        found = choose_lr(cfg, prep, run_dir / "lr_find.png" if main else None)
        chosen = float(found.suggestion)
        # the resolved config records the choice, so the run can be repeated as is
        cfg = cfg.model_copy(
            update={"optimizer": cfg.optimizer.model_copy(update={"lr": chosen})}
        )
        extra_sections.append(
            Section(
                "Learning rate chosen by lr_find",
                text=f"lr: auto -> {chosen:.3g} ({found.suggestion_rule})",
                images=[run_dir / "lr_find.png"],
            )
        )
    if main:
        dump_config(cfg, run_dir / "config.yaml")

    cb = cfg.callbacks
    callbacks: list[Any] = [MetricsLogger(run_dir, log_every=cb.log_every, tensorboard=cb.tensorboard)]
    if cb.checkpoint.enabled:
        callbacks.append(
            Checkpoint(
                ckpt_dir,
                every_n_steps=cb.checkpoint.every_n_steps,
                every_epoch=cb.checkpoint.every_epoch,
                keep=cb.checkpoint.keep,
            )
        )
    if cb.early_stopping is not None:
        es = cb.early_stopping
        callbacks.append(
            EarlyStopping(
                monitor=es.monitor,
                mode=es.mode,
                patience=es.patience,
                min_delta=es.min_delta,
                restore_best=es.restore_best,
            )
        )
    if cb.divergence_guard.enabled:
        from gradwise.train import DivergenceGuard

        callbacks.append(DivergenceGuard(**cb.divergence_guard.model_dump(exclude={"enabled"})))
    callbacks.extend(extra_callbacks)
    if progress and cb.progress:
        callbacks.append(ProgressBar())

    t = cfg.training
    scheduler = None
    if cfg.schedule is not None:
        from gradwise.schedules import attach, schedule

        spec = dict(cfg.schedule)
        total = t.epochs * _steps_per_epoch(len(prep.parts.train), cfg)
        scheduler = attach(prep.optimizer, schedule(spec.pop("name"), total_steps=total, **spec))
    trainer = Trainer(
        prep.model,
        prep.optimizer,
        prep.head,
        epochs=t.epochs,
        batch_size=t.batch_size,
        callbacks=callbacks,
        device=t.device,
        grad_accum=t.grad_accum,
        clip_grad_norm=t.clip_grad_norm,
        precision=t.precision,
        seed=t.seed,
        scheduler=scheduler,
    )
    parts = prep.parts
    val = parts.val.tensors() if len(parts.val) else None
    history = trainer.fit(parts.train.tensors(), val, resume=ckpt_dir if can_resume else None)

    results = {"train": trainer.evaluate(parts.train.tensors())}
    if len(parts.val):
        results["val"] = trainer.evaluate(parts.val.tensors())
    if len(parts.test):
        results["test"] = trainer.evaluate(parts.test.tensors())
    if main:
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        write_report(run_dir, title=f"gradwise train: {cfg.name}", extra=extra_sections)
    return TrainResult(run_dir, results, prep.model, history)
