"""Held-out evaluation of an instruction-tuned model.

Two numbers:

* **exact match**: the share of examples whose generated answer (greedy,
  up to the first stop token) equals the reference response, after
  stripping surrounding whitespace;
* **response-token accuracy**: with the reference fed in (teacher forcing),
  the share of response tokens that are the argmax prediction of the
  position before them. It moves smoothly while exact match is still 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from gradwise.instruct._data import Example
from gradwise.instruct._generate import generate
from gradwise.instruct._loss import token_accuracy
from gradwise.instruct._masking import tokenize_example
from gradwise.instruct._packing import collate_padded


@dataclass
class EvalResult:
    """Exact match and token accuracy on ``n`` examples, with every generation."""

    exact_match: float
    token_accuracy: float
    n: int
    predictions: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, float]:
        return {"exact_match": self.exact_match, "token_accuracy": self.token_accuracy, "n": self.n}


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predictions equal to their reference after ``strip()``.

    >>> exact_match(["tac ", "dog"], ["tac", "god"])
    0.5
    """
    if not references:
        return 0.0
    hits = sum(p.strip() == r.strip() for p, r in zip(predictions, references))
    return hits / len(references)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    tokenizer: Any,
    examples: Sequence[Example],
    template: Any,
    *,
    max_new_tokens: int = 32,
    batch_size: int = 32,
    max_length: int | None = None,
) -> EvalResult:
    """Exact match (generation) and response-token accuracy (teacher forcing).

    The prompt of each example is its conversation up to the final assistant
    turn, tokenized exactly as in training; the reference is that turn.
    """
    if not examples:
        return EvalResult(0.0, 0.0, 0)
    tokenized = [
        tokenize_example(ex, template, max_length=max_length, assistant_turns="last")
        for ex in examples
    ]
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    correct = total = 0
    try:
        for i in range(0, len(tokenized), batch_size):
            batch = collate_padded(tokenized[i : i + batch_size], pad)
            logits = model(
                input_ids=batch["input_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device),
            ).logits
            c, t = token_accuracy(logits, batch["labels"].to(device))
            correct, total = correct + c, total + t
    finally:
        model.train(was_training)
    prompts = [t.input_ids[: t.prompt_length] for t in tokenized]
    preds = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        stop_ids=template.stop_ids(),
        batch_size=batch_size,
    )
    refs = [ex.response for ex in examples]
    rows = [
        {"prompt": ex.prompt_messages[-1]["content"], "reference": r, "prediction": p}
        for ex, r, p in zip(examples, refs, preds)
    ]
    return EvalResult(exact_match(preds, refs), correct / max(total, 1), len(examples), rows)
