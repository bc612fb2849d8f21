"""Recipe: ``gradwise finetune CONFIG``, fine-tune a pretrained model on a new task.

Reads top to bottom: source model -> target data (and source-task data) ->
new head -> [LoRA] -> layer groups -> optimizer (discriminative rates) ->
schedule -> plan, augmentation and logging callbacks -> source-task score
before -> fit -> scores after -> report. Everything lands in ``runs/NAME/``:
``config.yaml``, ``metrics.jsonl``, ``metrics.csv``, ``results.json``,
``model.safetensors``, ``plots/*.png`` and ``report.html``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradwise import data as gdata
from gradwise import nn as gnn
from gradwise._io import atomic_write, write_text
from gradwise.config import FinetuneConfig, dump_config
from gradwise.config._finetune import FinetuneDataConfig
from gradwise.data._sentences import Sentences
from gradwise.errors import ConfigError, DataError
from gradwise.finetune import (
    Augment,
    GradualUnfreezing,
    LayerGroup,
    Plan,
    TextClassifier,
    count_trainable,
    discriminative_lr,
    find_head,
    layer_groups,
    load_source,
    replace_head,
    swapped,
    tokenize,
)
from gradwise.recipes._setup import (
    build_optimizer,
    callbacks_from_config,
    claim_run_dir,
    cleanup_on_failure,
    schedule_factory,
)
from gradwise.report import Section, write_report
from gradwise.train import Trainer
from gradwise.train._fsdp import full_state_dict, is_sharded, trainer_mode


@dataclass
class FinetuneResult:
    """What a fine-tune produced.

    Attributes:
        run_dir: the run directory.
        results: metrics per split (``train``, ``val``, ``test``) and, when a
            source task is given, ``source_before`` / ``source_after``.
        forgetting: ``{"before", "after", "change"}`` of the source task's
            accuracy (or loss for regression), or None.
        model: the fine-tuned model.
        history: the trainer's epoch records (with ``.events``).
        seconds: wall time of ``fit``.
    """

    run_dir: Path
    results: dict[str, dict[str, float]]
    forgetting: dict[str, float] | None
    model: torch.nn.Module
    history: Any
    seconds: float


# -- data ----------------------------------------------------------------------------


def keep_classes(table: Any, classes: list[Any] | None) -> Any:
    """Rows of the listed classes only, relabelled ``0..k-1`` in the listed order."""
    if classes is None:
        return table
    names = [str(c) for c in (table.classes or range(table.n_classes))]
    missing = [c for c in classes if str(c) not in names]
    if missing:
        raise ConfigError(f"data.classes: {missing[0]!r} is not a class of {table.name}; classes: {names}")
    old = np.array([names.index(str(c)) for c in classes])
    lookup = np.full(len(names), -1)
    lookup[old] = np.arange(len(old))
    sub = table.subset(np.isin(table.y, old))
    kept = [table.classes[i] if table.classes else int(i) for i in old]
    if isinstance(sub, gdata.Table):
        return dataclasses.replace(sub, y=lookup[sub.y], n_classes=len(old), classes=kept)
    task = "binary" if len(old) == 2 else "multiclass"
    return dataclasses.replace(sub, y=lookup[sub.y], classes=kept, task=task)


def read_text_csv(path: Path, target: str) -> Sentences:
    """A CSV with a ``text`` column and a label column named ``target``."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "text" not in rows[0] or target not in rows[0]:
        raise DataError(f"{path}: a text dataset needs columns 'text' and {target!r}")
    labels = sorted({r[target] for r in rows})
    y = np.array([labels.index(r[target]) for r in rows], dtype=np.int64)
    texts = np.array([r["text"] for r in rows], dtype=object)
    return Sentences(texts, y, labels, "binary" if len(labels) == 2 else "multiclass", path.stem)


def load_parts(cfg: FinetuneDataConfig, text: bool) -> gdata.Split:
    """Load, filter and split a dataset; scale pixel-like features when asked."""
    if text:
        if cfg.name == "sentences":
            table = gdata.sentences()
        elif cfg.path is not None:
            table = read_text_csv(Path(cfg.path), cfg.target or "label")
        else:
            raise ConfigError("data: a Hugging Face source needs text data: name: sentences or a CSV path")
    else:
        from gradwise.recipes.train import load_table

        table = load_table(cfg)
        if cfg.scale is not None:
            table = dataclasses.replace(table, X=(table.X * cfg.scale).astype(np.float32))
    table = keep_classes(table, cfg.classes)
    parts = gdata.split(table, val=cfg.val, test=cfg.test, seed=cfg.seed)
    if cfg.max_train is not None and cfg.max_train < len(parts.train):
        keep = np.sort(np.random.RandomState(cfg.seed).permutation(len(parts.train))[: cfg.max_train])
        parts = parts._replace(train=parts.train.subset(keep))
    return parts


def as_tensors(part: Any, tokenizer: Any, max_length: int) -> tuple[torch.Tensor, ...]:
    """Trainer data: ``(X, y)`` for a table, ``(input_ids, attention_mask, y)`` for text."""
    if tokenizer is None:
        return part.tensors()
    ids, mask = tokenize(tokenizer, list(part.texts), max_length)
    return ids, mask, torch.as_tensor(part.y)


# -- optimizer and schedule ------------------------------------------------------------------


# -- the run ------------------------------------------------------------------------------------


def run(
    cfg: FinetuneConfig, *, overwrite: bool = True, progress: bool = True, extra_callbacks: Sequence[Any] = ()
) -> FinetuneResult:
    """Fine-tune as ``cfg`` says and write its run directory (``extra_callbacks`` join the Trainer's).

    An existing ``runs/NAME`` is replaced (``overwrite``, the default; the
    command line refuses unless ``--overwrite``). A run that fails leaves no
    new directory behind.
    """
    run_dir = cfg.run_dir
    fresh = claim_run_dir(run_dir, overwrite=overwrite)
    with cleanup_on_failure(run_dir, fresh):
        return _run(cfg, run_dir, progress, extra_callbacks)


def _run(
    cfg: FinetuneConfig, run_dir: Path, progress: bool, extra_callbacks: Sequence[Any] = ()
) -> FinetuneResult:
    dump_config(cfg, run_dir / "config.yaml")

    # 1. the pretrained model
    source = load_source(cfg.source.path, cfg.source.model, cfg.source.checkpoint)
    text = source.kind == "hf"

    # 2. the new task's data, and the source task's (to measure forgetting)
    parts = load_parts(cfg.data, text)
    if cfg.source_data is not None and text:
        raise ConfigError("source_data: forgetting is measured through a source head; a bare encoder has none")
    src_parts = load_parts(cfg.source_data, text) if cfg.source_data is not None else None
    if cfg.data.standardize and not text:
        # the model sees inputs scaled as in pretraining: fit on the source task when given
        _, scaler = gdata.standardize(src_parts if src_parts is not None else parts)
        parts = gdata.Split(*(dataclasses.replace(t, X=scaler.transform(t.X)) for t in parts))
        if src_parts is not None:
            src_parts = gdata.Split(*(dataclasses.replace(t, X=scaler.transform(t.X)) for t in src_parts))
    tok, max_len = source.tokenizer, cfg.source.max_length
    train, val, test = (as_tensors(p, tok, max_len) if len(p) else None for p in parts)

    # 3. the head for the new task: replaced on a gradwise model, added on an encoder
    task = cfg.head or parts.train.task
    head = gnn.head(task, parts.train.out_features)
    torch.manual_seed(cfg.training.seed)  # the new head's init is part of the run's seed
    if text:
        model = TextClassifier(source.model, head.out_features, cfg.source.pooling, cfg.source.dropout)
        head_path, old_head = "head", None
    else:
        model = source.model
        head_path = find_head(model)
        old_head = replace_head(model, head.out_features, head_path)
    if cfg.lora is not None:
        from gradwise.lora import LoRAConfig, inject

        inject(model, LoRAConfig.from_dict(cfg.lora))

    # 4. layer groups and the optimizer over all of them (the plan freezes, the optimizer skips)
    groups = layer_groups(model, cfg.plan.groups)
    if cfg.discriminative is not None:
        d = cfg.discriminative
        params: list[Any] = discriminative_lr(
            groups, cfg.optimizer.lr, d.factor, decay=d.decay, head_lr=d.head_lr
        )
    else:
        params = list(model.named_parameters())
    optimizer = build_optimizer(cfg.optimizer, params)

    # 5. the learning-rate schedule: the Trainer counts the run's steps from its loader
    t = cfg.training
    schedule = schedule_factory(cfg.schedule)

    # 6. callbacks: the plan, augmentation, logs, checkpoints
    # with LoRA and no plan given, the adapters and the head train, the base weights stay frozen
    lora_default = cfg.lora is not None and "plan" not in cfg.model_fields_set
    plan = GradualUnfreezing(
        plan=Plan.lora() if lora_default else cfg.plan.to_plan(),
        groups=groups,
        batchnorm=cfg.plan.batchnorm,
        restart_schedule=cfg.plan.restart_schedule,
    )
    callbacks, tail = callbacks_from_config(cfg.callbacks, run_dir, progress=progress, guard=False)
    callbacks = [plan, *callbacks, *extra_callbacks]
    loss: Any = head
    augment = None
    if cfg.augment is not None and cfg.augment.transforms:
        shape = cfg.augment.image_shape or getattr(parts.train, "image_shape", None)
        augment = Augment(cfg.augment.transforms, seed=cfg.augment.seed, image_shape=shape)
        callbacks.insert(1, augment)
        loss = augment.loss(head)
    callbacks += tail
    trainer = Trainer(
        model, optimizer, loss, epochs=t.epochs, batch_size=t.batch_size, callbacks=callbacks,
        device=t.device, grad_accum=t.grad_accum, clip_grad_norm=t.clip_grad_norm,
        precision=t.precision, seed=t.seed, schedule=schedule,
        distributed=trainer_mode(t.distributed), threads=t.threads,
    )  # fmt: skip

    # 7. the source task through its own head, before fine-tuning
    results: dict[str, dict[str, float]] = {}
    scorer = None
    if src_parts is not None:
        src_head = gnn.head(src_parts.train.task, src_parts.train.out_features)
        if src_head.out_features != old_head.out_features:
            raise ConfigError(
                f"source_data has {src_head.out_features} outputs but the source head "
                f"{head_path!r} has {old_head.out_features}"
            )
        scorer = Trainer(model, optimizer, src_head, batch_size=256, device=t.device)
        src_test = src_parts.test if len(src_parts.test) else src_parts.val
        with swapped(model, head_path, old_head):
            results["source_before"] = scorer.evaluate(src_test.tensors())

    # 8. fine-tune
    start = time.perf_counter()
    history = trainer.fit(train, val)
    seconds = time.perf_counter() - start

    # 9. scores after: the new task, and the source task through its old head
    named = {"train": train, "val": val, "test": test}
    results.update(trainer.evaluate({k: v for k, v in named.items() if v is not None}))
    forgetting = None
    if scorer is not None:
        with swapped(model, head_path, old_head):
            results["source_after"] = scorer.evaluate(src_test.tensors())
        key = "accuracy" if "accuracy" in results["source_before"] else "loss"
        b, a = results["source_before"][key], results["source_after"][key]
        forgetting = {"metric": key, "before": b, "after": a, "change": a - b}
    # results.json holds what a re-run repeats bit for bit; wall time goes beside it
    write_text(run_dir / "results.json", json.dumps(results, indent=2))
    write_text(run_dir / "timings.json", json.dumps({"fit_seconds": seconds}, indent=2))
    if cfg.save_model:
        _save_weights(model, run_dir / "model.safetensors")

    # 10. the report
    extra = _report_sections(cfg, plan.plan, model, groups, optimizer, history, forgetting, augment,
                             seconds)
    write_report(run_dir, title=f"gradwise finetune: {cfg.name}", extra=extra)
    return FinetuneResult(run_dir, results, forgetting, model, history, seconds)


# -- outputs ------------------------------------------------------------------------------------


def _save_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file, save_model

    # save_model (which drops tied duplicates) writes to a name; the file lands atomically
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staged = Path(tmp) / path.name
        if is_sharded(model):  # FSDP: the full weights, gathered from the shards
            save_file({k: v.contiguous() for k, v in full_state_dict(model).items()}, str(staged))
        else:
            save_model(model, str(staged))
        data = staged.read_bytes()
    atomic_write(path, lambda f: f.write(data))


def _report_sections(
    cfg: FinetuneConfig,
    plan: Plan,
    model: torch.nn.Module,
    groups: list[LayerGroup],
    optimizer: torch.optim.Optimizer,
    history: Any,
    forgetting: dict[str, float] | None,
    augment: Augment | None,
    seconds: float,
) -> list[Section]:
    trainable, total = count_trainable(model)
    rates = {g["name"]: g.get("initial_lr", g["lr"]) for g in optimizer.param_groups if "name" in g}
    rows = []
    for g in groups:
        row: dict[str, Any] = {"group": g.name, "tensors": len(g.params), "parameters": g.numel}
        if g.name in rates:
            row["base lr"] = rates[g.name]
        row["trainable at end"] = "yes" if g.trainable else "no"
        rows.append(row)
    stages = [
        {"epoch": e["epoch"], "step": e["step"], "stage": f"{e['stage']}/{e['stages']}",
         "train": ", ".join(e["train"]), "groups": len(e["groups"]), "trainable": e["trainable"]}
        for e in history.events if e.get("kind") == "unfreeze"
    ]  # fmt: skip
    sections = [
        Section(
            "Fine-tuning",
            text=(
                f"Source: {cfg.source.path}. Plan: {plan!r}. "
                f"{len(groups)} layer groups, {trainable:,} of {total:,} parameters trainable at the "
                f"end; fit took {seconds:.1f} s."
            ),
            tables=[("layer groups, input to output", rows), ("plan stages (unfreeze events)", stages)],
        )
    ]
    if forgetting is not None:
        m = forgetting["metric"]
        sections.append(
            Section(
                "Forgetting",
                text=(
                    f"Source-task test {m} through the source head on the fine-tuned body, before "
                    f"and after fine-tuning: measured, not assumed."
                ),
                tables=[("", [{f"{m} before": forgetting["before"], f"{m} after": forgetting["after"],
                               "change": forgetting["change"]}])],
            )
        )
    if augment is not None:
        sections.append(Section("Augmentation", pre=repr(augment)))
    return sections
