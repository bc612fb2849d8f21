"""Recipe: ``gradwise train CONFIG``, a supervised MLP run from a YAML config.

Reads top to bottom: data -> split -> standardize (fitted on train only) ->
head -> model -> optimizer -> callbacks -> fit -> evaluate -> report.
Everything lands in ``runs/NAME/``: ``config.yaml``, ``metrics.jsonl``,
``metrics.csv``, ``checkpoints/``, ``plots/*.png``, ``results.json`` and
``report.html``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gradwise import data as gdata
from gradwise import nn as gnn
from gradwise._io import write_text
from gradwise.config import DataConfig, RunConfig, dump_config, parse_config, read_yaml
from gradwise.errors import ConfigError
from gradwise.optim import set_lr
from gradwise.recipes._setup import (
    build_optimizer,
    callbacks_from_config,
    claim_run_dir,
    cleanup_on_failure,
    schedule_factory,
)
from gradwise.report import Section, write_report
from gradwise.train import Trainer, is_main_process
from gradwise.train._fsdp import trainer_mode


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
        raise ConfigError("data: give exactly one of 'name' (a built-in dataset) or 'path'")
    if cfg.name is not None:
        return gdata.load(cfg.name, **cfg.options)
    path = Path(cfg.path)
    if path.suffix.lower() == ".npz":
        return gdata.read_npz(path, task=cfg.task)
    if cfg.target is None:
        raise ConfigError(f"data.target: a CSV file needs the name of its target column ({path})")
    return gdata.read_csv(path, cfg.target, task=cfg.task)


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


def prepare(cfg: RunConfig, table: gdata.Table | None = None) -> Prepared:
    """Data (split, standardized on train only), head, seeded model and optimizer.

    With ``optimizer.lr: auto`` the optimizer starts at a placeholder lr;
    :func:`choose_lr` replaces it. ``table``: ``cfg.data`` already loaded
    (a sweep's worker loads it once for all its trials); it is not changed.
    """
    table = load_table(cfg.data) if table is None else table
    parts = gdata.split(table, val=cfg.data.val, test=cfg.data.test, seed=cfg.data.seed)
    if cfg.data.standardize:
        parts, _ = gdata.standardize(parts)
    head = gnn.head(cfg.head or table.task, table.out_features)
    torch.manual_seed(cfg.training.seed)  # model init is part of the run's seed
    model = build_model(cfg, table.n_features, head.out_features)
    placeholder = 1e-3 if cfg.optimizer.lr == "auto" else None
    optimizer = build_optimizer(cfg.optimizer, list(model.named_parameters()), lr=placeholder)
    return Prepared(parts, head, model, optimizer)


def choose_lr(cfg: RunConfig, prep: Prepared, plot_path: Path | None = None) -> Any:
    """Run the LR range test on the train split and set every group's lr to its suggestion.

    Model, optimizer and RNG states are restored by :func:`lr_find`, so the run
    that follows starts exactly as it would have with that lr written in the
    config. Returns the :class:`LRFinderResult`.
    """
    from gradwise._steps import forward_progress, step_progress
    from gradwise.schedules import lr_find

    steps = 100
    with step_progress("lr_find: range test", total=steps) as bar, forward_progress(prep.model, bar):
        found = lr_find(
            prep.model,
            prep.head,
            prep.parts.train.tensors(),
            prep.optimizer,
            batch_size=cfg.training.batch_size,
            num_steps=steps,
        )
    set_lr(prep.optimizer, found.group_lrs)
    if plot_path is not None:
        found.plot(plot_path)
    return found


def _resumed_lr(cfg: RunConfig, previous: Path) -> RunConfig:
    """Check a resumed run's config against the one it started with; keep the lr it chose."""
    if not previous.exists():
        return cfg
    old = parse_config(read_yaml(previous))
    if cfg.optimizer.lr == "auto" and isinstance(old.optimizer.lr, float):
        # the checkpoint carries the lr chosen when the run started; keep its record
        cfg = cfg.model_copy(update={"optimizer": cfg.optimizer.model_copy(update={"lr": old.optimizer.lr})})
        cfg.optimizer.model_fields_set.add("lr")
    mine, theirs = cfg.model_dump(mode="json"), old.model_dump(mode="json")
    # more epochs extend a run without a schedule (a schedule's length would change)
    free = {"callbacks.progress"} | ({"training.epochs"} if cfg.schedule is None else set())
    changed = sorted(set(_diff(mine, theirs)) - free)
    if changed:
        raise ConfigError(
            f"--resume: the config differs from the run's {previous} in {', '.join(changed)}; "
            "resume with the same config, or start a new run (--set name=... or --overwrite)"
        )
    return cfg


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if a == b else [path or "<root>"]


def run(
    cfg: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = True,
    progress: bool = True,
    extra_callbacks: Sequence[Any] = (),
    report: bool = True,
    table: gdata.Table | None = None,
) -> TrainResult:
    """Run a config end to end and write its run directory.

    An existing ``runs/NAME`` is replaced (``overwrite``, the default; the
    command line refuses unless ``--overwrite``) or continued (``resume``:
    from its latest checkpoint, with the same config).
    A run that fails before its first result leaves no directory behind.
    ``extra_callbacks`` are added after the config's own (a sweep adds its
    pruning callback this way). ``report=False`` skips ``report.html`` and its
    plots (a sweep's trials: the sweep report covers them). ``table``: the
    data of ``cfg.data``, already loaded (see :func:`prepare`).
    """
    run_dir = cfg.run_dir
    ckpt_dir = run_dir / "checkpoints"
    main = is_main_process()  # under torchrun only rank 0 writes files
    fresh = claim_run_dir(run_dir, overwrite=overwrite, resume=resume) if main else False
    with cleanup_on_failure(run_dir, fresh):
        return _run(cfg, run_dir, ckpt_dir, resume, main, progress, extra_callbacks, report, table)


def _run(
    cfg: RunConfig,
    run_dir: Path,
    ckpt_dir: Path,
    resume: bool,
    main: bool,
    progress: bool,
    extra_callbacks: Sequence[Any],
    report: bool = True,
    table: gdata.Table | None = None,
) -> TrainResult:
    if resume:
        cfg = _resumed_lr(cfg, run_dir / "config.yaml")
    prep = prepare(cfg, table)
    extra_sections: list[Section] = []
    if cfg.optimizer.lr == "auto":
        found = choose_lr(cfg, prep, run_dir / "lr_find.png" if main else None)
        chosen = float(found.suggestion)
        # the resolved config records the choice, so the run can be repeated as is
        opt = cfg.optimizer.model_copy(update={"lr": chosen})
        opt.model_fields_set.add("lr")
        cfg = cfg.model_copy(update={"optimizer": opt})
        extra_sections.append(
            Section(
                "Learning rate chosen by lr_find",
                text=f"lr: auto -> {chosen:.3g} ({found.suggestion_rule})",
                images=[run_dir / "lr_find.png"],
            )
        )
    if main:
        dump_config(cfg, run_dir / "config.yaml")

    callbacks, tail = callbacks_from_config(cfg.callbacks, run_dir, progress=progress)
    callbacks += [*extra_callbacks, *tail]
    t = cfg.training
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
        schedule=schedule_factory(cfg.schedule),
        distributed=trainer_mode(t.distributed),
        threads=t.threads,
    )
    parts = prep.parts
    val = parts.val.tensors() if len(parts.val) else None
    history = trainer.fit(parts.train.tensors(), val, resume=ckpt_dir if resume else None)

    results = {"train": trainer.evaluate(parts.train.tensors())}
    if len(parts.val):
        results["val"] = trainer.evaluate(parts.val.tensors())
    if len(parts.test):
        results["test"] = trainer.evaluate(parts.test.tensors())
    if main:
        write_text(run_dir / "results.json", json.dumps(results, indent=2))
        if report:
            write_report(run_dir, title=f"gradwise train: {cfg.name}", extra=extra_sections)
    return TrainResult(run_dir, results, prep.model, history)
