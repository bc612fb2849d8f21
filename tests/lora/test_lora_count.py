"""The LoRA paper's count: RoBERTa-base, r=8 on query and value, 294,912 trainable."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from gradwise.lora import LoRAConfig, inject, trainable_parameters

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def roberta_base():
    # Base sizes (12 layers, 768 wide) on the meta device: shapes only, no memory, no init time.
    with torch.device("meta"):
        return transformers.RobertaModel(transformers.RobertaConfig())


def test_roberta_base_query_value_r8(roberta_base, capsys):
    ours = inject(copy.deepcopy(roberta_base), LoRAConfig(r=8, alpha=8, target_modules=["query", "value"]))
    count = trainable_parameters(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin = peft.get_peft_model(copy.deepcopy(roberta_base),
                                   peft.LoraConfig(r=8, lora_alpha=8, target_modules=["query", "value"]))
    peft_trainable, peft_total = twin.get_nb_trainable_parameters()
    with capsys.disabled():
        print(f"\n  gradwise: {count.trainable:,} / {count.total:,}   PEFT: {peft_trainable:,} / {peft_total:,}")
    assert count.trainable == 294_912 == 12 * 2 * (8 * 768 + 768 * 8)
    assert (count.trainable, count.total) == (peft_trainable, peft_total)
