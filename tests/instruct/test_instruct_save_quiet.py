"""Saving a model shows gradwise's progress only: transformers' own bars stay off."""

import pytest

transformers = pytest.importorskip("transformers")

from gradwise.instruct._base import save_pretrained_atomic  # noqa: E402


class _Tokenizer:
    def save_pretrained(self, path):
        (path / "tokenizer.json").write_text("{}")


def test_save_pretrained_atomic_prints_no_transformers_bar(tmp_path, capfd):
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
    hf_logging.enable_progress_bar()
    out = save_pretrained_atomic(LlamaForCausalLM(cfg), _Tokenizer(), tmp_path / "m")
    captured = capfd.readouterr()
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    assert "Writing" not in captured.err + captured.out and "%|" not in captured.err
    assert hf_logging.is_progress_bar_enabled()  # the user's setting is put back
