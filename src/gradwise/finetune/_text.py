"""Sequence classification on top of a Hugging Face encoder loaded from a local directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from gradwise._optional import require
from gradwise.errors import ConfigError, unknown

POOLINGS = ("mean", "cls")


def load_hf_encoder(path: str | Path) -> tuple[nn.Module, Any]:
    """``(AutoModel, AutoTokenizer)`` from a local model directory; nothing is downloaded."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ConfigError(f"{str(path)!r} is not a Hugging Face model directory (no config.json)")
    require("transformers", "hf", "a Hugging Face model")
    from transformers import AutoModel, AutoTokenizer

    from gradwise._steps import quiet_transformers

    with quiet_transformers():  # no "Loading weights" bar or load report from transformers
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model, tokenizer


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int = 64) -> tuple[Tensor, Tensor]:
    """``(input_ids, attention_mask)``, int64 ``(N, T)``, padded to the longest text (≤ ``max_length``)."""
    enc = tokenizer(
        [str(t) for t in texts],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return enc["input_ids"], enc["attention_mask"]


class TextClassifier(nn.Module):
    """A pretrained encoder, a pooling of its token states, dropout and a linear head.

    ``pooling="mean"`` averages the last hidden states over real tokens,
    ``Σ_t m_t h_t / Σ_t m_t`` (how sentence-transformers models such as
    all-MiniLM-L6-v2 were trained); ``"cls"`` takes the first token's state.
    The encoder's own pooler, unused by either, is dropped, so that its
    weights neither cost time nor form a layer group that never learns.

    Shapes:
        ``input_ids``, ``attention_mask``: ``(N, T)`` -> logits ``(N, out_features)``.
        Columns past the longest text of the batch are cut before the
        encoder runs, so a globally padded dataset costs no extra compute.

    Example:
        >>> # encoder, tok = load_hf_encoder(model_dir)
        >>> # model = TextClassifier(encoder, out_features=3)
        >>> # logits = model(*tokenize(tok, ["a good film", "a dull film"]))
    """

    def __init__(
        self, encoder: nn.Module, out_features: int, pooling: str = "mean", dropout: float = 0.1
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise unknown("pooling", str(pooling), POOLINGS)
        hidden = getattr(getattr(encoder, "config", None), "hidden_size", None)
        if not isinstance(hidden, int):
            raise ConfigError(f"TextClassifier: {type(encoder).__name__} has no config.hidden_size")
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, out_features)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        length = int(attention_mask.sum(1).max())  # one host sync per batch
        ids, mask = input_ids[:, :length], attention_mask[:, :length]  # (N, T')
        states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (N, T', H)
        if self.pooling == "cls":
            pooled = states[:, 0]
        else:
            m = mask.unsqueeze(-1).to(states.dtype)  # (N, T', 1)
            pooled = (states * m).sum(1) / m.sum(1).clamp_min(1.0)  # (N, H)
        return self.head(self.dropout(pooled))

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}"



