"""gradwise: gradient-based training and fine-tuning on PyTorch.

Each technique is a small, tested piece in its own subpackage:

- :mod:`gradwise.nn`: activations, ``MLP``, output heads
- :mod:`gradwise.data`: built-in and synthetic datasets, CSV/NPZ, splits
- :mod:`gradwise.optim`: optimizers as chains of transforms (``sgd``, ``adamw``, ...)
- :mod:`gradwise.regularization`: ``L1``, ``L2``, ``ElasticNet`` penalties with exact prox
- :mod:`gradwise.schedules`: learning-rate schedules, ``attach``, ``lr_find``
- :mod:`gradwise.train`: ``Trainer`` and its callbacks
- :mod:`gradwise.finetune`: freezing, layer groups, discriminative lr, augmentation
- :mod:`gradwise.lora`: LoRA adapters in PEFT's file format
- :mod:`gradwise.instruct`: instruction tuning of causal language models
- :mod:`gradwise.linear`: glmnet-grade Lasso, Ridge, ElasticNet, logistic regression

Subpackages and the most used names are imported on first access, so
``import gradwise`` stays cheap::

    >>> import gradwise
    >>> gradwise.Trainer is gradwise.train.Trainer
    True
"""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import Any

try:  # the one place the version is written is pyproject.toml
    __version__ = _metadata.version("gradwise")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_SUBPACKAGES = (
    "data",
    "errors",
    "finetune",
    "instruct",
    "linear",
    "lora",
    "nn",
    "optim",
    "regularization",
    "report",
    "schedules",
    "sweep",
    "train",
)

# name -> subpackage that defines it
_NAMES = {
    "MLP": "nn",
    "activation": "nn",
    "Trainer": "train",
    "Optimizer": "optim",
    "chain": "optim",
    "sgd": "optim",
    "adam": "optim",
    "adamw": "optim",
    "rmsprop": "optim",
    "adagrad": "optim",
    "L1": "regularization",
    "L2": "regularization",
    "sparsity": "regularization",
    "attach": "schedules",
    "lr_find": "schedules",
    "LoRAConfig": "lora",
    "Lasso": "linear",
    "Ridge": "linear",
    "ElasticNet": "linear",
    "GradwiseError": "errors",
    "ConfigError": "errors",
}

__all__ = ["__version__", *_SUBPACKAGES, *_NAMES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"gradwise.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(f"gradwise.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'gradwise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
