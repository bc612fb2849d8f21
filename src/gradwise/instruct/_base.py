"""A tiny pretrained base model, built locally: tokenizer, pretraining, HF directory.

There is no model hub to download from, so demos and tests make their own
base model:

1. a byte-level BPE tokenizer is trained with ``tokenizers`` on a generated
   corpus; digits and capital letters stay one per token (as Llama splits
   digits), so numbers and the capital-letter strings of the tasks read
   character by character while lowercase English is merged;
   special tokens ``<|endoftext|>`` (BOS, EOS), ``<|pad|>``, ``<|im_start|>``
   and ``<|im_end|>``, and a ChatML chat template;
2. a tiny Llama- or GPT-2-style ``transformers`` model is pretrained on the
   corpus (documents joined by EOS, cut into rows of ``max_length``) with
   next-token cross-entropy, AdamW and a warmup-cosine learning rate;
3. both are saved with ``save_pretrained``: an ordinary Hugging Face
   directory that ``AutoModelForCausalLM.from_pretrained`` and
   ``AutoTokenizer.from_pretrained`` load, with ``pretraining.json`` (the
   parameter count, steps, seconds and every step's loss).

The corpus states facts of the tasks in :mod:`._tasks` as plain sentences,
so the base model knows them but has never seen an instruction.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from gradwise._optional import require
from gradwise.errors import ConfigError
from gradwise.instruct._pretrain import PretrainProgress, document_rows, pretrain, token_rows
from gradwise.instruct._tasks import corpus as task_corpus
from gradwise.instruct._tokenizer import CHATML_JINJA, SPECIAL_TOKENS, train_tokenizer

__all__ = [
    "CHATML_JINJA",
    "SPECIAL_TOKENS",
    "BaseModelInfo",
    "PretrainProgress",
    "init_base",
    "init_chat_embeddings",
    "pretrain",
    "save_pretrained_atomic",
    "tiny_config",
    "train_tokenizer",
]


def tiny_config(
    arch: Literal["llama", "gpt2"],
    vocab_size: int,
    *,
    hidden: int = 128,
    layers: int = 4,
    heads: int = 4,
    max_length: int = 256,
    bos_id: int | None = None,
    eos_id: int | None = None,
    pad_id: int | None = None,
) -> Any:
    """A transformers config of a tiny causal LM (tied input/output embeddings)."""
    if hidden % heads:
        raise ConfigError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    ids = {"bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": pad_id}
    require("transformers", "hf", "tiny_config")
    if arch == "llama":
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden,
            intermediate_size=int(hidden * 8 / 3 / 16 + 0.5) * 16,  # SwiGLU's 2/3 of 4x
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=max_length,
            tie_word_embeddings=True,
            **ids,
        )
    if arch == "gpt2":
        from transformers import GPT2Config

        return GPT2Config(
            vocab_size=vocab_size,
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            n_positions=max_length,
            tie_word_embeddings=True,
            **ids,
        )
    raise ConfigError(f"unknown base architecture {arch!r}; allowed: gpt2, llama")


def init_chat_embeddings(model: Any, tokenizer: Any) -> None:
    """Start the chat tokens that pretraining never saw from embeddings they stand for.

    The corpus holds no ``<|im_start|>``/``<|im_end|>``, so their rows of the
    (tied) embedding are still random: an end of turn would have a near-zero
    logit that LoRA, which leaves the embedding alone, cannot raise, and a
    tuned model would never stop. As is usual when tokens are added to a
    pretrained model (Hewitt 2021, "Initializing new word embeddings for
    pretrained language models"), ``<|im_end|>`` gets the embedding of EOS
    (both end a text; generation stops at either) and ``<|im_start|>`` the
    mean of the embeddings of the tokens seen in pretraining.
    """
    emb = model.get_input_embeddings().weight
    specials = {tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    seen = [i for i in range(emb.shape[0]) if i not in specials]
    with torch.no_grad():
        emb[tokenizer.convert_tokens_to_ids("<|im_end|>")] = emb[tokenizer.eos_token_id]
        emb[tokenizer.convert_tokens_to_ids("<|im_start|>")] = emb[seen].mean(0)


@dataclass
class BaseModelInfo:
    """What :func:`init_base` built: where, how big, and how pretraining went."""

    path: Path
    n_parameters: int
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    cached: bool = False  # True when :func:`~._base_cache.cached_base` reused a saved model


def init_base(
    out_dir: str | Path,
    *,
    arch: Literal["llama", "gpt2"] = "llama",
    hidden: int = 128,
    layers: int = 4,
    heads: int = 4,
    vocab_size: int = 384,
    max_length: int = 128,
    documents: int = 20_000,
    steps: int = 500,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    sentences: Sequence[int] = (3, 6),
    fresh_words: float = 0.0,
    rows: Literal["packed", "documents"] = "packed",
    texts: Sequence[str] | None = None,
    device: str = "cpu",
    log: Callable[[int, float], None] | None = None,
    progress: bool = False,
    extra_files: dict[str, str] | None = None,
) -> BaseModelInfo:
    """Train a tokenizer, pretrain a tiny causal LM and save both to ``out_dir``.

    Args:
        out_dir: the Hugging Face directory to write (replaced atomically).
        arch: ``"llama"`` (RMSNorm, RoPE, SwiGLU) or ``"gpt2"``.
        hidden, layers, heads: model width, depth and attention heads.
        vocab_size: BPE vocabulary size (at least 260).
        max_length: the row length of pretraining and the model's context.
        documents: size of the generated corpus (see :func:`~._tasks.corpus`);
            ignored when ``texts`` gives a corpus.
        steps, batch_size, lr: pretraining budget.
        tasks: the task names whose facts make the corpus (default: all ten).
        sentences: ``(lo, hi)``, the fact sentences per generated document.
        fresh_words: the share of word-task sentences about a new random word
            (see :func:`~._tasks.corpus`): facts that teach the skill, not the item.
        rows: ``"packed"`` joins documents by EOS and cuts rows of
            ``max_length`` (:func:`~._pretrain.token_rows`); ``"documents"``
            gives each document a row of its own, padded
            (:func:`~._pretrain.document_rows`), so a sentence never sees
            another's words.
        texts: a corpus of your own instead of the generated one.
        device: where to pretrain (``"cpu"``, ``"cuda"``); the saved model is the same.
        log: called as ``log(step, loss)`` after every step.
        progress: show a progress bar (a terminal) or a line per tenth of the
            steps (a log) on stderr.
        extra_files: ``{name: text}`` written into ``out_dir`` with the model,
            inside the same atomic swap.

    >>> info = init_base("runs/base")  # doctest: +SKIP
    >>> AutoModelForCausalLM.from_pretrained(info.path)  # doctest: +SKIP
    """
    require("transformers", "hf", "init_base")
    from transformers import AutoModelForCausalLM

    start = time.perf_counter()
    torch.manual_seed(seed)
    if rows not in ("packed", "documents"):
        raise ConfigError(f"rows must be 'packed' or 'documents', got {rows!r}")
    if len(sentences) != 2 or not 1 <= sentences[0] <= sentences[1]:
        raise ConfigError(f"sentences must be (lo, hi) with 1 <= lo <= hi, got {sentences!r}")
    if texts is None:
        texts = task_corpus(
            documents,
            sentences=(int(sentences[0]), int(sentences[1])),
            tasks=list(tasks) if tasks else None,
            seed=seed,
            fresh_words=fresh_words,
        )
    texts = list(texts)
    tokenizer = train_tokenizer(texts, vocab_size)
    config = tiny_config(
        arch,
        len(tokenizer),
        hidden=hidden,
        layers=layers,
        heads=heads,
        max_length=max(max_length, 256),
        bos_id=tokenizer.bos_token_id,
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
    )
    model = AutoModelForCausalLM.from_config(config)
    cut = document_rows if rows == "documents" else token_rows
    data = cut(tokenizer, texts, max_length)
    with PretrainProgress(steps, enabled=progress) as bar:

        def on_step(step: int, loss: float) -> None:
            bar.update(step, loss)
            if log is not None:
                log(step, loss)

        losses = pretrain(
            model,
            data,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=device,
            log=on_step,
        )
    init_chat_embeddings(model, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    seconds = time.perf_counter() - start
    stats = {"n_parameters": n_params, "steps": steps, "seconds": round(seconds, 2)}
    files = {"pretraining.json": json.dumps({**stats, "losses": [round(x, 5) for x in losses]})}
    path = save_pretrained_atomic(model, tokenizer, out_dir, {**files, **(extra_files or {})})
    return BaseModelInfo(path, n_params, steps, seconds, losses)


def save_pretrained_atomic(
    model: Any, tokenizer: Any, out_dir: str | Path, extra_files: dict[str, str] | None = None
) -> Path:
    """``save_pretrained`` model and tokenizer into a sibling temp dir, then swap it in.

    ``extra_files`` (``{name: text}``) are written into the same temp dir, so
    the directory appears with all of them or not at all.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    from gradwise._steps import quiet_transformers

    with quiet_transformers():  # no "Writing model shards" bar of transformers' own
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    for name, text in (extra_files or {}).items():
        (tmp / name).write_text(text, encoding="utf-8")
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    return out
