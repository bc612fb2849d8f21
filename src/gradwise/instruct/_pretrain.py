"""Next-token pretraining of a tiny causal LM on token rows, with its progress display.

:func:`token_rows` joins documents by EOS and cuts them into rows,
:func:`document_rows` gives each document a padded row of its own;
:func:`pretrain` runs AdamW with a warmup-cosine learning rate over them;
:class:`PretrainProgress` shows a bar on a terminal and a line per tenth of
the steps in a log.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from gradwise.errors import ConfigError


def token_rows(tokenizer: Any, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """Documents joined by EOS and cut into rows of ``max_length`` tokens (N, T)."""
    eos = tokenizer.eos_token_id
    flat: list[int] = []
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        flat += ids + [eos]
    n = len(flat) // max_length
    if n == 0:
        raise ConfigError(f"the corpus has {len(flat)} tokens, fewer than one row of {max_length}")
    return torch.tensor(flat[: n * max_length]).view(n, max_length)


def document_rows(tokenizer: Any, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """One row per document (ending in EOS), cut at ``max_length`` and padded with -100 (N, T).

    ``T`` is the longest document (at most ``max_length``). Unlike
    :func:`token_rows` no document shares a row with another, so what the
    model predicts depends on its own document only; :func:`pretrain` feeds
    the pad token at -100 positions and leaves them out of the loss.
    """
    eos = tokenizer.eos_token_id
    ids = [
        (i + [eos])[:max_length]
        for i in tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    ]
    if not ids:
        raise ConfigError("the corpus has no documents")
    rows = torch.full((len(ids), max(map(len, ids))), -100, dtype=torch.long)
    for k, row in enumerate(ids):
        rows[k, : len(row)] = torch.tensor(row)
    return rows


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

    Positions holding -100 (the padding of :func:`document_rows`) are fed as
    the model's pad token and left out of the loss. The learning rate warms up linearly for ``warmup`` steps, then follows a
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
    pad = getattr(getattr(model, "config", None), "pad_token_id", None)
    if pad is None and bool((rows < 0).any()):
        raise ConfigError("rows padded with -100 need a model whose config has a pad_token_id")
    model.train()
    losses = []
    order = torch.randperm(len(rows), generator=g)
    at = 0
    for step in range(steps):
        if at + batch_size > len(order):
            order, at = torch.randperm(len(rows), generator=g), 0
        x = rows[order[at : at + batch_size]].to(device)
        at += batch_size
        ids = x.masked_fill(x < 0, pad) if pad is not None else x
        loss = model(input_ids=ids, labels=x).loss
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
