"""Recipe: ``gradwise instruct CONFIG``, supervised fine-tuning (SFT) of a causal LM.

Reads top to bottom: load model + tokenizer (``from_pretrained`` of a local
directory) -> read the JSONL data -> tokenize with response-only labels ->
evaluate the base model -> LoRA (optional) -> batches (packed or padded) ->
optimizer + schedule (AdamW + warmup-cosine unless the config names others) -> the gradwise Trainer (metrics log, divergence
guard, checkpoints, progress) -> evaluate -> save the adapter or the merged model -> report.

Everything lands in ``runs/NAME/``: ``config.yaml``, ``metrics.jsonl``,
``checkpoints/``, ``adapter/`` (PEFT format) or ``model/``
(``save_pretrained``), ``results.json``, ``generations.jsonl`` and
``report.html``.

The Trainer feeds ``(inputs, target)`` pairs to ``model(*inputs)`` and
``loss(output, target)``; a causal LM takes keyword tensors instead, so two
small adapters sit between them: :class:`CausalLMAdapter` (a module whose
``forward(batch)`` returns the logits) and :func:`causal_lm_loss` on
``(logits, labels)``.

Under ``torchrun`` (several processes, ``training.distributed`` not ``off``)
each rank trains on its share of every global batch (:func:`shard_loader`)
with the loss normalised by the global batch's labelled-token count
(:class:`ShardedLMLoss`); docs/distributed.md has the arithmetic.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gradwise._io import write_text
from gradwise._optional import require
from gradwise.config import (
    CallbacksConfig,
    CheckpointConfig,
    DivergenceGuardConfig,
    InstructConfig,
    dump_config,
    parse_config,
)
from gradwise.errors import DataError
from gradwise.instruct import (
    EvalResult,
    Example,
    evaluate,
    get_template,
    make_loader,
    packed_attention,
    read_jsonl,
    tokenize_dataset,
)
from gradwise.instruct._base import save_pretrained_atomic
from gradwise.recipes._instruct_parts import (
    CausalLMAdapter,
    ShardedLMLoss,
    lm_loss,
    shard_loader,
)
from gradwise.recipes._setup import (
    build_optimizer,
    callbacks_from_config,
    claim_run_dir,
    cleanup_on_failure,
    schedule_factory,
)
from gradwise.train._distributed import process_rank, world_size
from gradwise.train._fsdp import gather_into, is_sharded, trainer_mode

if TYPE_CHECKING:
    from gradwise.instruct._templates import Template


@dataclass
class SFTResult:
    """What a run produced: its directory, metrics before/after, the tuned model."""

    run_dir: Path
    results: dict[str, Any]
    model: nn.Module
    tokenizer: Any
    history: Any = None
    generations: list[dict[str, str]] = field(default_factory=list)


def load_model(cfg: InstructConfig) -> tuple[nn.Module, Any]:
    """``from_pretrained`` of the model and tokenizer directories a config names."""
    require("transformers", "hf", "gradwise instruct")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(cfg.model.path)
    if not (path / "config.json").is_file():
        raise DataError(
            f"model.path: {path} is not a Hugging Face model directory (no config.json)"
        )
    tokenizer = AutoTokenizer.from_pretrained(cfg.model.tokenizer or path)
    if tokenizer.pad_token_id is None:  # padding positions are masked out, any id does
        tokenizer.pad_token = tokenizer.eos_token
    kw: dict[str, Any] = {"dtype": getattr(torch, cfg.model.dtype)}
    if cfg.model.attn_implementation is not None:
        kw["attn_implementation"] = cfg.model.attn_implementation
    from gradwise._steps import quiet_transformers

    with quiet_transformers():  # gradwise shows its own progress, not "Loading weights"
        model = AutoModelForCausalLM.from_pretrained(path, **kw)
    return model, tokenizer


def load_examples(cfg: InstructConfig) -> tuple[list[Example], list[Example], dict[str, Any]]:
    """Train and held-out examples: ``data.val`` or a seeded ``val_fraction`` of train."""
    d = cfg.data
    train = read_jsonl(d.train, format=d.format, on_error=d.on_error)
    info = {"train_file": d.train, "skipped_lines": train.skipped}
    examples = list(train)
    if d.val is not None:
        val_data = read_jsonl(d.val, format=d.format, on_error=d.on_error)
        info["skipped_lines"] = train.skipped + val_data.skipped
        return examples, list(val_data), info
    n_val = int(round(d.val_fraction * len(examples)))
    if n_val == 0:
        return examples, [], info
    order = list(range(len(examples)))
    random.Random(d.seed).shuffle(order)
    held = set(order[:n_val])
    return (
        [e for i, e in enumerate(examples) if i not in held],
        [examples[i] for i in sorted(held)],
        info,
    )


def _eval(model: nn.Module, tokenizer: Any, examples: list[Example], template: Template,
          cfg: InstructConfig) -> EvalResult:
    e = cfg.eval
    subset = examples[: e.max_examples] if e.max_examples else examples
    return evaluate(
        model,
        tokenizer,
        subset,
        template,
        max_new_tokens=e.max_new_tokens,
        batch_size=e.batch_size,
        max_length=cfg.data.max_length,
    )


def sft(
    cfg: InstructConfig,
    *,
    model: nn.Module | None = None,
    tokenizer: Any = None,
    train_examples: list[Example] | None = None,
    val_examples: list[Example] | None = None,
    test_examples: list[Example] | None = None,
    resume: bool = False,
    overwrite: bool = True,
    progress: bool = True,
) -> SFTResult:
    """Instruction-tune a causal LM as ``cfg`` says; see the module docstring.

    ``model``/``tokenizer`` and ``train_examples``/``val_examples``/``test_examples``
    may be given directly (they then replace ``cfg.model`` and ``cfg.data`` files).
    The validation examples give the per-epoch ``val_loss`` that the divergence
    guard watches (it ends the run on the best epoch); before/after exact match
    and generations are measured on the test examples (``data.test``), or on
    the validation examples when there are none.
    An existing ``runs/NAME`` is replaced (``overwrite``, the default; the
    command line refuses unless ``--overwrite``) or continued (``resume``:
    from its latest checkpoint).
    """
    # 1. the run directory: a fresh run never mixes records with an older one, and a
    #    failed one leaves no new directory behind
    run_dir = cfg.run_dir
    fresh = claim_run_dir(run_dir, overwrite=overwrite, resume=resume)
    with cleanup_on_failure(run_dir, fresh):
        return _sft(
            cfg, run_dir, model, tokenizer, train_examples, val_examples, test_examples,
            resume, progress,
        )  # fmt: skip


def _sft(
    cfg: InstructConfig,
    run_dir: Path,
    model: nn.Module | None,
    tokenizer: Any,
    train_examples: list[Example] | None,
    val_examples: list[Example] | None,
    test_examples: list[Example] | None,
    can_resume: bool,
    progress: bool,
) -> SFTResult:
    from gradwise import lora as glora
    from gradwise.report import Section, write_report
    from gradwise.train import Trainer

    ckpt_dir = run_dir / "checkpoints"
    dump_config(cfg, run_dir / "config.yaml")

    # 2. model, tokenizer and template
    if model is None or tokenizer is None:
        model, tokenizer = load_model(cfg)
    template = get_template(cfg.data.template, tokenizer)
    dtype = next(model.parameters()).dtype

    # 3. data -> token ids with labels on the responses only
    info: dict[str, Any] = {}
    if train_examples is None:
        train_examples, loaded_val, info = load_examples(cfg)
        val_examples = loaded_val if val_examples is None else val_examples
    val_examples = val_examples or []
    d = cfg.data
    if test_examples is None and d.test is not None:
        test_data = read_jsonl(d.test, format=d.format, on_error=d.on_error)
        info["skipped_lines"] = list(info.get("skipped_lines", [])) + list(test_data.skipped)
        test_examples = list(test_data)
    # the items measured before and after: the test split, else the validation split
    held_out = test_examples if test_examples is not None else val_examples
    tok_kw = dict(
        max_length=d.max_length,
        truncation=d.truncation,
        assistant_turns=d.assistant_turns,
        unstable=d.unstable,
        close_turns=d.close_turns,
    )
    train_tok, stats = tokenize_dataset(train_examples, template, **tok_kw)
    val_tok, _ = tokenize_dataset(val_examples, template, **tok_kw)
    if not train_tok:
        raise DataError("no training example has a response token left; check max_length")

    # 4. the base model on the held-out set, for a before/after comparison
    results: dict[str, Any] = {}
    if cfg.eval.before and held_out and not can_resume:
        results["before"] = _eval(model, tokenizer, held_out, template, cfg).as_dict()

    # 5. LoRA: freeze the base, train low-rank adapters
    lora_cfg = None
    if cfg.lora is not None:
        lc = cfg.lora
        torch.manual_seed(cfg.training.seed)  # the adapters' initial A is random
        lora_cfg = glora.LoRAConfig(
            r=lc.r,
            alpha=lc.alpha,
            dropout=lc.dropout,
            target_modules=lc.target_modules,
            use_rslora=lc.use_rslora,
            task_type="CAUSAL_LM",
        )
        glora.inject(model, lora_cfg)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())

    # 6. batches: packed rows (attention example by example, or a block-diagonal
    #    mask where the model cannot take the boundaries) or padded examples
    t = cfg.training
    packed = packed_attention(model, d.packed_attention) if d.packing else None
    attention = packed.mode if packed is not None else d.packed_attention
    pad_id = tokenizer.pad_token_id
    loader_kw = dict(pad_id=pad_id, dtype=dtype, pairs=True, max_length=d.max_length)
    train_loader = make_loader(
        train_tok,
        batch_size=t.batch_size,
        packing=d.packing,
        attention=attention,
        shuffle=True,
        seed=t.seed,
        **loader_kw,
    )
    # under torchrun each rank trains on its part of every global batch
    mode = trainer_mode(t.distributed)
    world = 1 if mode is False else world_size()
    if world > 1:
        train_loader = shard_loader(train_loader, process_rank(), world)
    val_loader = (
        make_loader(val_tok, batch_size=t.batch_size, shuffle=False, **loader_kw)
        if val_tok
        else None
    )

    # 7. optimizer and schedule (default AdamW, warmup then cosine) on the trainable
    #    weights; the Trainer counts the steps from its loader
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = build_optimizer(cfg.optimizer, trainable)

    # 8. train with the gradwise Trainer
    callbacks, tail = callbacks_from_config(
        CallbacksConfig(
            progress=t.progress,
            log_every=t.log_every,
            checkpoint=CheckpointConfig(enabled=t.checkpoint, every_epoch=True, keep=1),
            divergence_guard=DivergenceGuardConfig(enabled=t.guard),
        ),
        run_dir,
        progress=progress,
    )
    callbacks += tail
    trainer = Trainer(
        CausalLMAdapter(model),
        optimizer,
        lm_loss if world == 1 else ShardedLMLoss(world),
        epochs=t.epochs,
        batch_size=t.batch_size,
        callbacks=callbacks,
        device=t.device,
        grad_accum=t.grad_accum,
        clip_grad_norm=t.clip_grad_norm,
        precision=t.precision,
        seed=t.seed,
        schedule=schedule_factory(cfg.schedule),
        distributed=mode,
        threads=t.threads,
    )
    try:
        history = trainer.fit(train_loader, val_loader, resume=ckpt_dir if can_resume else None)
    finally:
        if packed is not None:
            packed.restore()
    if is_sharded(trainer.model):
        # FSDP trained shards: evaluate and save a plain copy holding the full weights.
        plain = load_model(cfg)[0]
        if lora_cfg is not None:
            glora.inject(plain, lora_cfg)
        model = gather_into(trainer.model, CausalLMAdapter(plain)).lm  # type: ignore[assignment]

    # 9. evaluate the tuned model on the held-out set
    generations: list[dict[str, str]] = []
    if held_out:
        after = _eval(model, tokenizer, held_out, template, cfg)
        results["after"] = after.as_dict()
        generations = after.predictions

    # 10. save: the adapter (PEFT format) or the whole model (LoRA merged in)
    if cfg.save == "adapter":
        glora.save_adapter(model, run_dir / "adapter", base_model_name_or_path=str(cfg.model.path))
        tokenizer.save_pretrained(run_dir / "adapter")
    elif cfg.save == "merged":
        if cfg.lora is not None:
            glora.unload(model, merge_adapter=True)
        save_pretrained_atomic(model, tokenizer, run_dir / "model")

    # 11. results and report
    results["data"] = {
        "train_examples": len(train_tok),
        "val_examples": len(val_tok),
        "test_examples": len(test_examples) if test_examples is not None else None,
        "truncated": stats.n_truncated,
        "dropped": stats.n_dropped,
        "tokenized_by_segment": stats.n_split,
        "skipped_lines": len(info.get("skipped_lines", [])),
        "packed_attention": attention if d.packing else None,
    }
    results["parameters"] = {"trainable": n_trainable, "total": n_total}
    write_text(run_dir / "results.json", json.dumps(results, indent=2))
    write_text(run_dir / "generations.jsonl", "".join(json.dumps(g) + "\n" for g in generations))
    table = [{k: g[k] for k in ("prompt", "reference", "prediction")} for g in generations[:20]]
    write_report(
        run_dir,
        title=f"gradwise instruct: {cfg.name}",
        extra=[Section("Generations (held-out)", tables=[("first 20", table)])] if table else [],
    )
    return SFTResult(run_dir, results, model, tokenizer, history, generations)


def run(
    cfg: InstructConfig | dict[str, Any],
    *,
    resume: bool = False,
    overwrite: bool = True,
    progress: bool = True,
) -> SFTResult:
    """Validate a config (a dict or an :class:`InstructConfig`) and run :func:`sft`."""
    if not isinstance(cfg, InstructConfig):
        cfg = parse_config(cfg, InstructConfig)
    return sft(cfg, resume=resume, overwrite=overwrite, progress=progress)
