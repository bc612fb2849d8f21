"""The tiny base model, built once per recipe and reused: a cache keyed by its recipe's hash.

Pretraining the demo's base model is most of the demo's time, and a given
recipe (model config, corpus, pretraining settings, the version of the code
that builds it) always builds the same kind of model. :func:`cached_base`
therefore keeps each built model in a directory named by the SHA-256 of that
recipe::

    key = sha256(json({"recipe": {...every init_base setting...},
                       "recipe_version": RECIPE_VERSION,
                       "gradwise": gradwise.__version__}, sort_keys=True))[:16]
    <cache dir>/base-models/base-<key>/      # config.json, model.safetensors,
                                             # tokenizer files, recipe.json, pretraining.json

The same recipe finds the same directory and loads it with
``from_pretrained``; any change to the recipe (or to gradwise) gives a new
key, so a stale model is never reused. The directory is written under a
temporary name and renamed into place, so a crash or a concurrent build
leaves a whole model or none.

The cache directory is ``$GRADWISE_CACHE_DIR`` if set, else the user cache
directory (``platformdirs.user_cache_dir("gradwise")`` where platformdirs is
installed, else ``$XDG_CACHE_HOME/gradwise`` or ``~/.cache/gradwise``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path
from typing import Any

from gradwise.errors import ConfigError
from gradwise.instruct._base import BaseModelInfo, init_base

# Bump when a change to the code that builds a base model (tokenizer, corpus,
# config, pretraining loop) changes what a recipe builds: old entries are then
# never found again.
RECIPE_VERSION = 3

#: init_base's settings that make up a recipe (``device``, ``log`` and
#: ``progress`` change how it is built, not what).
RECIPE_FIELDS = (
    "arch",
    "hidden",
    "layers",
    "heads",
    "vocab_size",
    "max_length",
    "documents",
    "steps",
    "batch_size",
    "lr",
    "seed",
    "tasks",
    "sentences",
    "fresh_words",
    "rows",
)

#: fields added to the recipe later; left at their default they are not part of the key
LATER_FIELDS = ("sentences", "fresh_words", "rows")
_LATER_DEFAULTS = {"sentences": [3, 6], "fresh_words": 0.0, "rows": "packed"}

_DEFAULTS = {k: inspect.signature(init_base).parameters[k].default for k in RECIPE_FIELDS}


def cache_dir() -> Path:
    """Where gradwise caches what it builds: ``$GRADWISE_CACHE_DIR`` or the user cache dir."""
    env = os.environ.get("GRADWISE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:
        root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(root).expanduser() / "gradwise"
    return Path(platformdirs.user_cache_dir("gradwise"))


def recipe_key(recipe: dict[str, Any]) -> str:
    """The 16-hex-digit SHA-256 key of a base-model recipe (see the module docstring).

    >>> recipe_key({"hidden": 64, "steps": 300}) == recipe_key({"steps": 300, "hidden": 64})
    True
    >>> recipe_key({"hidden": 64, "steps": 300}) == recipe_key({"hidden": 64, "steps": 301})
    False
    """
    import gradwise

    unknown_fields = sorted(set(recipe) - set(RECIPE_FIELDS))
    if unknown_fields:
        raise ConfigError(
            f"unknown base-model recipe field(s) {unknown_fields}; allowed: {', '.join(RECIPE_FIELDS)}"
        )
    canon = {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.items()}
    blob = json.dumps(
        {"recipe": canon, "recipe_version": RECIPE_VERSION, "gradwise": gradwise.__version__},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def cached_base(
    *,
    cache: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
    **recipe: Any,
) -> BaseModelInfo:
    """The base model of ``recipe`` (keywords of :func:`~._base.init_base`), built once.

    Looks for ``<cache>/base-models/base-<recipe_key>``; if it holds a
    complete model it is returned as it is (``info.cached`` is True, and
    ``info.seconds``/``info.losses`` are those of the original build), else
    :func:`~._base.init_base` builds it there atomically.

    Args:
        cache: the cache root (default :func:`cache_dir`).
        device: where to pretrain on a miss; not part of the recipe.
        progress: show pretraining progress on a miss.
        **recipe: ``arch``, ``hidden``, ``layers``, ``heads``, ``vocab_size``,
            ``max_length``, ``documents``, ``steps``, ``batch_size``, ``lr``,
            ``seed``, ``tasks``, ``sentences``, ``fresh_words``, ``rows``; omitted ones take init_base's defaults (the
            key is of the full recipe, defaults filled in).

    >>> info = cached_base(hidden=64, layers=2, heads=2, steps=300)  # doctest: +SKIP
    >>> AutoModelForCausalLM.from_pretrained(info.path)  # doctest: +SKIP
    """
    full = full_recipe(recipe)
    key = recipe_key(full)
    out = Path(cache if cache is not None else cache_dir()) / "base-models" / f"base-{key}"
    hit = _read_entry(out, key)
    if hit is not None:
        return hit
    meta = {"key": key, "recipe": full, "recipe_version": RECIPE_VERSION}
    return init_base(
        out,
        device=device,
        progress=progress,
        extra_files={"recipe.json": json.dumps(meta, indent=1)},
        **full,
    )


def full_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """``recipe`` with init_base's defaults filled in for every omitted field."""
    unknown_fields = sorted(set(recipe) - set(RECIPE_FIELDS))
    if unknown_fields:
        raise ConfigError(
            f"unknown base-model recipe field(s) {unknown_fields}; allowed: {', '.join(RECIPE_FIELDS)}"
        )
    full = {k: recipe.get(k, _DEFAULTS[k]) for k in RECIPE_FIELDS}
    if full["tasks"] is not None:
        full["tasks"] = list(full["tasks"])
    full["sentences"] = list(full["sentences"])
    # fields added after the first recipes count only when set: a recipe that
    # leaves them at their defaults keeps its key (and its cached model)
    for k in LATER_FIELDS:
        if full[k] == _LATER_DEFAULTS[k]:
            del full[k]
    return full


def _read_entry(out: Path, key: str) -> BaseModelInfo | None:
    """The cached model at ``out`` if it is complete and of ``key``, else None.

    Entries appear whole (renamed into place), so a directory lacking a file
    is of an older layout; it is rebuilt (replaced atomically) on a miss.
    """
    try:
        meta = json.loads((out / "recipe.json").read_text(encoding="utf-8"))
        stats = json.loads((out / "pretraining.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("key") != key or not (out / "model.safetensors").is_file():
        return None
    return BaseModelInfo(
        path=out,
        n_parameters=int(stats["n_parameters"]),
        steps=int(stats["steps"]),
        seconds=float(stats["seconds"]),
        losses=[float(x) for x in stats["losses"]],
        cached=True,
    )
