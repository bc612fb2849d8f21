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
import math
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
from gradwise.instruct._tasks import corpus as task_corpus

SPECIAL_TOKENS = ("<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>")
CHATML_JINJA = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def train_tokenizer(texts: Sequence[str], vocab_size: int = 384) -> Any:
    """Train a byte-level BPE tokenizer; return a transformers fast tokenizer.

    All 256 byte symbols are in the vocabulary, so any text encodes;
    ``vocab_size`` bounds the merges learned on top of them. Digits and
    capital letters are never merged.

    >>> tok = train_tokenizer(["the cat sat", "the dog ran"], vocab_size=300)
    >>> tok.decode(tok("the cat 42")["input_ids"])
    'the cat 42'
    """
    require("tokenizers", "hf", "train_tokenizer")
    require("transformers", "hf", "train_tokenizer")
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
        raise ConfigError(
            f"vocab_size must be at least {len(alphabet) + len(SPECIAL_TOKENS)} "
            f"(256 bytes + {len(SPECIAL_TOKENS)} special tokens), got {vocab_size}"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            # one token per digit and capital letter: arithmetic and the
            # letter tasks see every character (BPE merges would hide them)
            pre_tokenizers.Split(Regex("[0-9A-Z]"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    hf.chat_template = CHATML_JINJA
    return hf


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


def _rows(tokenizer: Any, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """Documents joined by EOS and cut into rows of ``max_length`` tokens (N, T)."""
    eos = tokenizer.eos_token_id
    flat: list[int] = []
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        flat += ids + [eos]
    n = len(flat) // max_length
    if n == 0:
        raise ConfigError(f"the corpus has {len(flat)} tokens, fewer than one row of {max_length}")
    return torch.tensor(flat[: n * max_length]).view(n, max_length)


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


def pretrain(
    model: torch.nn.Module,
    rows: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    warmup: int = 20,
    weight_decay: float = 0.01,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Next-token pretraining on token rows (N, T); returns the loss of every step.

    The learning rate warms up linearly for ``warmup`` steps, then follows a
    cosine to 10% of ``lr``; only 2-D weights decay (as in nanoGPT).
    """
    g = torch.Generator().manual_seed(seed)
    model.to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
        betas=(0.9, 0.95),
    )

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    losses = []
    order = torch.randperm(len(rows), generator=g)
    at = 0
    for step in range(steps):
        if at + batch_size > len(order):
            order, at = torch.randperm(len(rows), generator=g), 0
        x = rows[order[at : at + batch_size]].to(device)
        at += batch_size
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log is not None:
            log(step, losses[-1])
    model.eval().to("cpu")
    return losses


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
    if texts is None:
        texts = task_corpus(documents, tasks=list(tasks) if tasks else None, seed=seed)
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
    rows = _rows(tokenizer, texts, max_length)
    with PretrainProgress(steps, enabled=progress) as bar:

        def on_step(step: int, loss: float) -> None:
            bar.update(step, loss)
            if log is not None:
                log(step, loss)

        losses = pretrain(
            model,
            rows,
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


class PretrainProgress:
    """Pretraining progress on stderr: a ``rich`` bar with the loss on a terminal,
    else one line per tenth of the steps (a log is read by line); silent when
    ``enabled`` is False. A context manager; ``update(step, loss)`` after each step.
    """

    def __init__(self, steps: int, enabled: bool = True) -> None:
        self.steps, self.enabled = steps, enabled
        self._bar: Any = None
        self._task: Any = None
        self._console: Any = None
        self._start = 0.0
        self._next = 0.0

    def __enter__(self) -> PretrainProgress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._console = Console(stderr=True)
        self._start = time.monotonic()
        if self._console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]pretraining"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self._console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=self.steps, loss="-")
        return self

    def update(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            now = time.monotonic()
            if now >= self._next or step + 1 == self.steps:
                self._bar.update(self._task, completed=step + 1, loss=f"{loss:.3f}")
                self._next = now + 0.2
        elif (step + 1) % max(1, self.steps // 10) == 0 or step + 1 == self.steps:
            elapsed = time.monotonic() - self._start
            self._console.print(
                f"pretraining step {step + 1}/{self.steps}  loss {loss:.3f}  {elapsed:.1f}s",
                soft_wrap=True,
                highlight=False,
            )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            if exc[0] is None:
                self._console.print(
                    f"pretrained {self.steps} steps in {time.monotonic() - self._start:.1f}s",
                    highlight=False,
                )


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
