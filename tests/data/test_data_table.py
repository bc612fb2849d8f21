import numpy as np
import pytest
import torch

from gradwise.data import TASKS, Table, load
from gradwise.errors import ConfigError, DataError


def make(task, y, **kw):
    n = len(y)
    return Table(
        X=np.arange(2 * n).reshape(n, 2),
        y=y,
        feature_names=["a", "b"],
        target_name="t",
        task=task,
        **kw,
    )


def test_tasks_and_out_features():
    assert TASKS == ("binary", "multiclass", "multilabel", "regression")
    assert make("binary", [0, 1]).out_features == 1
    t = make("multiclass", [0, 2, 1])
    assert (t.n_classes, t.out_features) == (3, 3)  # inferred from the labels
    assert make("multiclass", [0, 1], n_classes=5).out_features == 5
    t = make("multilabel", [[0, 1, 1], [1, 0, 0]])
    assert (t.n_classes, t.out_features, t.y.dtype) == (3, 3, np.int64)
    t = make("regression", [0.5, 2])
    assert (t.n_classes, t.out_features, t.y.dtype) == (None, 1, np.float32)
    assert make("regression", [[0.5, 1], [2, 3]]).out_features == 2


def test_tensors_and_subset():
    t = load("iris")
    X, y = t.tensors()
    assert X.dtype == torch.float32 and y.dtype == torch.int64 and X.shape == (150, 4)
    X[0, 0] = -1.0
    assert t.X[0, 0] != -1.0  # a copy, the table is unchanged
    _, y = load("diabetes").tensors()
    assert y.dtype == torch.float32
    sub = t.subset([0, 50, 100])
    assert len(sub) == 3 and sub.y.tolist() == [0, 1, 2]
    assert (sub.name, sub.classes, sub.n_classes) == ("iris", t.classes, 3)
    assert len(t.subset(t.y == 2)) == 50
    assert len(t.subset([])) == 0
    assert repr(sub) == (
        "Table(name='iris', n=3, p=4, task='multiclass', n_classes=3, target='species')"
    )
    with pytest.raises(DataError, match=r"idx must be integers or a boolean mask"):
        t.subset([0.5])


@pytest.mark.parametrize(
    ("task", "y", "kw", "match"),
    [
        ("binary", [0, 2], {}, r"labels must be 0..1, found 0..2"),
        ("multiclass", [0, 3], {"n_classes": 3}, r"labels must be 0..2"),
        ("multiclass", [0.5, 1], {}, r"integer class labels"),
        ("multilabel", [0, 1], {}, r"0/1 matrix"),
        ("multilabel", [[0, 2], [1, 0]], {}, r"only hold 0 and 1"),
        ("binary", [0, 1, 1], {}, r"X has 2 rows but y has shape \(3,\)"),
    ],
)
def test_validation(task, y, kw, match):
    X = np.zeros((2, 2))
    with pytest.raises(DataError, match=match):
        Table(X=X, y=y, feature_names=["a", "b"], target_name="t", task=task, **kw)


def test_bad_task_and_names():
    with pytest.raises(ConfigError, match=r"unknown task 'regresion' \(did you mean 'regression'"):
        make("regresion", [0.0])
    with pytest.raises(DataError, match=r"3 feature names for 2 columns"):
        Table(
            X=np.zeros((1, 2)),
            y=[0.0],
            feature_names=["a", "b", "c"],
            target_name="t",
            task="regression",
        )
    with pytest.raises(DataError, match=r"X must be 2-D"):
        Table(X=np.zeros(3), y=[0.0] * 3, feature_names=[], target_name="t", task="regression")
    with pytest.raises(DataError, match=r"image_shape \(1, 3, 3\) does not hold 2 features"):
        make("binary", [0, 1], image_shape=(1, 3, 3))


def test_string_labels_are_a_clear_error():
    with pytest.raises(DataError, match=r"y must be class indices 0..K-1, got labels such as 'no'"):
        Table(X=np.zeros((2, 1)), y=["no", "yes"], feature_names=["a"], target_name="y",
              task="binary")
