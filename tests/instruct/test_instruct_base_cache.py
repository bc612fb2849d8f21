"""The base-model cache: one build per recipe, found again by the recipe's hash."""

from __future__ import annotations

import json

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.instruct import _base_cache
from gradwise.instruct._base_cache import cache_dir, cached_base, full_recipe, recipe_key

TINY = dict(
    hidden=16,
    layers=1,
    heads=2,
    vocab_size=300,
    max_length=32,
    documents=60,
    steps=3,
    batch_size=2,
    tasks=["first", "count"],
)


def test_second_call_is_a_hit_without_retraining(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    first = cached_base(cache=tmp_path, **TINY)
    assert not first.cached and len(first.losses) == 3
    key = recipe_key(full_recipe(TINY))
    assert first.path == tmp_path / "base-models" / f"base-{key}"
    meta = json.loads((first.path / "recipe.json").read_text())
    assert meta["key"] == key and meta["recipe"]["hidden"] == 16
    assert meta["recipe"]["tasks"] == ["first", "count"]
    assert (first.path / "model.safetensors").is_file()
    assert not [p for p in first.path.parent.iterdir() if p.name.startswith(".")]

    # the same recipe: the same directory, loaded, and pretraining never runs again
    def no_training(*a, **k):
        raise AssertionError("pretrained again on a cache hit")

    monkeypatch.setattr(_base_cache, "init_base", no_training)
    again = cached_base(cache=tmp_path, **TINY)
    assert again.cached and again.path == first.path
    assert again.losses == pytest.approx(first.losses, abs=1e-5)
    assert again.n_parameters == first.n_parameters
    model = AutoModelForCausalLM.from_pretrained(again.path)
    assert sum(p.numel() for p in model.parameters()) == first.n_parameters
    # a tuple of tasks and the defaults written out are the same recipe
    explicit = {**full_recipe(TINY), "tasks": ("first", "count")}
    assert cached_base(cache=tmp_path, **explicit).path == first.path


def test_a_changed_recipe_is_a_new_entry(tmp_path):
    base = full_recipe(TINY)
    keys = {recipe_key(base)}
    for field, value in [
        ("steps", 4),
        ("lr", 1e-3),
        ("seed", 1),
        ("tasks", ["first"]),
        ("hidden", 32),
        ("arch", "gpt2"),
        ("documents", 61),
    ]:
        keys.add(recipe_key({**base, field: value}))
    assert len(keys) == 8
    first = cached_base(cache=tmp_path, **TINY)
    other = cached_base(cache=tmp_path, **{**TINY, "steps": 4})
    assert not other.cached and other.path != first.path and len(other.losses) == 4
    assert cached_base(cache=tmp_path, **TINY).cached  # the first entry is still there


def test_the_key_depends_on_the_code_version(monkeypatch):
    import gradwise

    key = recipe_key(full_recipe(TINY))
    monkeypatch.setattr(_base_cache, "RECIPE_VERSION", _base_cache.RECIPE_VERSION + 1)
    assert recipe_key(full_recipe(TINY)) != key
    monkeypatch.undo()
    monkeypatch.setattr(gradwise, "__version__", "999.0")
    assert recipe_key(full_recipe(TINY)) != key


def test_an_incomplete_entry_is_rebuilt(tmp_path):
    first = cached_base(cache=tmp_path, **TINY)
    (first.path / "pretraining.json").unlink()  # e.g. an entry of an older layout
    again = cached_base(cache=tmp_path, **TINY)
    assert not again.cached and (again.path / "pretraining.json").is_file()
    assert cached_base(cache=tmp_path, **TINY).cached


def test_cache_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADWISE_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    info = cached_base(**TINY)
    assert info.path.parent == tmp_path / "c" / "base-models"
    monkeypatch.delenv("GRADWISE_CACHE_DIR")
    assert cache_dir().name == "gradwise"


def test_unknown_recipe_field_is_named():
    with pytest.raises(ConfigError, match=r"unknown base-model recipe field\(s\) \['hiden'\]"):
        cached_base(hiden=16)


def test_pretraining_progress_in_a_log(tmp_path, capsys):
    from gradwise.instruct import init_base

    torch.manual_seed(0)
    init_base(tmp_path / "b", progress=True, **{**TINY, "steps": 20})
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("pretraining step")]
    assert len(lines) == 10 and lines[-1].startswith("pretraining step 20/20  loss ")
