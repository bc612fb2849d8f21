"""Datasets as :class:`Table` objects: built-ins, CSV/NPZ files, splits, standardization.

>>> from gradwise import data
>>> train, val, test = data.split(data.load("breast_cancer"), seed=0)
>>> (train, val, test), scaler = data.standardize(data.Split(train, val, test))
>>> train.task, train.out_features
('binary', 1)
"""

from gradwise.data._builtin import (
    DATASETS,
    breast_cancer,
    classification,
    diabetes,
    digits,
    iris,
    load,
    moons,
    sparse_regression,
    spirals,
    wine,
)
from gradwise.data._io import read_csv, read_npz
from gradwise.data._sentences import sentences
from gradwise.data._split import Split, Standardizer, split, standardize
from gradwise.data._table import TASKS, Table
from gradwise.data._targets import MAX_INFERRED_CLASSES, infer_task

__all__ = [
    "DATASETS",
    "MAX_INFERRED_CLASSES",
    "Split",
    "Standardizer",
    "TASKS",
    "Table",
    "breast_cancer",
    "classification",
    "diabetes",
    "digits",
    "infer_task",
    "iris",
    "load",
    "moons",
    "read_csv",
    "read_npz",
    "sentences",
    "sparse_regression",
    "spirals",
    "split",
    "standardize",
    "wine",
]
