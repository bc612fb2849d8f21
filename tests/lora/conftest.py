"""Shared helpers for the LoRA tests: tiny models and PEFT twins with the same weights."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn


def randomize_lora(model: nn.Module, seed: int = 0, std: float = 0.2) -> None:
    """Give every LoRA factor random values, so that adapters change outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * std)


def peft_twin(base: nn.Module, ours: nn.Module, **lora_kwargs) -> nn.Module:
    """PEFT's LoRA on a copy of ``base``, holding ``ours``'s adapter weights.

    The weights are copied through the in-memory state dicts, whose keys PEFT
    and gradwise share (``<path>.lora_A.default.weight``), so this does not use
    gradwise's file code.
    """
    peft = pytest.importorskip("peft")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(**lora_kwargs))
    ours_sd = {f"base_model.model.{k}": v for k, v in ours.state_dict().items() if "lora_" in k}
    missing = twin.load_state_dict(ours_sd, strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    lora_missing = [k for k in missing.missing_keys if "lora_" in k]
    assert not lora_missing, lora_missing
    return twin


@pytest.fixture(name="randomize_lora")
def _randomize_lora_fixture():
    return randomize_lora


@pytest.fixture(name="peft_twin")
def _peft_twin_fixture():
    return peft_twin


class Mixed(nn.Module):
    """Embedding → Conv1d → Conv2d (plain and grouped) → Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.conv1 = nn.Conv1d(8, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 4, 3, padding=1)
        self.grouped = nn.Conv2d(4, 4, 3, padding=1, groups=2)
        self.proj = nn.Linear(64, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)  # (B, 8, 8): 8 tokens, 8 channels
        h = self.conv1(h.transpose(1, 2))  # (B, 8, 8)
        h = self.conv2(h.reshape(-1, 2, 4, 8))  # (B, 4, 4, 8)
        h = self.grouped(torch.tanh(h))  # (B, 4, 4, 8)
        return self.head(torch.tanh(self.proj(h.flatten(1)[:, :64])))


@pytest.fixture
def mixed() -> Mixed:
    torch.manual_seed(0)
    return Mixed().eval()


@pytest.fixture
def ids() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 20, (3, 8), generator=g)


@pytest.fixture(scope="session")
def tiny_gpt2():
    transformers = pytest.importorskip("transformers")

    def build() -> nn.Module:
        torch.manual_seed(0)
        cfg = transformers.GPT2Config(
            n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=32,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        )
        return transformers.GPT2LMHeadModel(cfg).eval()

    return build


@pytest.fixture(scope="session")
def tiny_llama():
    transformers = pytest.importorskip("transformers")

    def build() -> nn.Module:
        torch.manual_seed(0)
        cfg = transformers.LlamaConfig(
            hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=64, max_position_embeddings=32,
        )
        return transformers.LlamaForCausalLM(cfg).eval()

    return build


@pytest.fixture
def tokens() -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randint(0, 64, (2, 10), generator=g)
