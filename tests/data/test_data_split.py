import math

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from gradwise.data import Split, Standardizer, Table, load, split, standardize
from gradwise.errors import ConfigError, DataError


def numbered(table):
    """The table with a first feature that is the row number, to track rows."""
    X = np.column_stack([np.arange(len(table)), table.X])
    return Table(
        X=X,
        y=table.y,
        feature_names=["row", *table.feature_names],
        target_name=table.target_name,
        task=table.task,
        n_classes=table.n_classes,
        name=table.name,
    )


def rows(t):
    return t.X[:, 0].astype(int)


@pytest.mark.parametrize("name", ["iris", "breast_cancer", "diabetes", "spirals"])
def test_sizes_and_disjointness(name):
    t = numbered(load(name))
    n = len(t)
    s = split(t, val=0.15, test=0.15, seed=0)
    assert isinstance(s, Split)
    n_test = math.ceil(0.15 * n)
    n_val = math.ceil(0.15 / 0.85 * (n - n_test))
    assert (len(s.train), len(s.val), len(s.test)) == (n - n_test - n_val, n_val, n_test)
    parts = [set(rows(p)) for p in s]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert parts[0] | parts[1] | parts[2] == set(range(n))
    for part in s:
        assert np.all(np.diff(rows(part)) > 0)  # original order kept
        np.testing.assert_array_equal(part.y, t.y[rows(part)])
        assert (part.task, part.n_classes, part.feature_names) == (
            t.task,
            t.n_classes,
            t.feature_names,
        )


def test_stratified_proportions():
    t = load("breast_cancer")  # 212 malignant, 357 benign
    for part, size in zip(split(t, val=0.2, test=0.2, seed=1), (341, 114, 114)):
        counts = np.bincount(part.y, minlength=2)
        assert len(part) == size
        assert abs(counts[0] - size * 212 / 569) <= 1
    wine = load("wine")
    ref = np.bincount(wine.y) / len(wine)
    for part in split(wine, val=0.25, test=0.25, seed=3):
        assert np.abs(np.bincount(part.y) - ref * len(part)).max() <= 1


def test_unstratified_split_differs():
    t = numbered(load("iris"))
    a = split(t, seed=0, stratify=True)
    b = split(t, seed=0, stratify=False)
    assert not np.array_equal(rows(a.test), rows(b.test))


def test_deterministic_given_seed():
    t = numbered(load("wine"))
    a, b, c = split(t, seed=5), split(t, seed=5), split(t, seed=6)
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(rows(pa), rows(pb))
    assert not np.array_equal(rows(a.test), rows(c.test))


def test_zero_fractions_give_empty_parts():
    t = load("iris")
    s = split(t, val=0.0, test=0.2)
    assert (len(s.train), len(s.val), len(s.test)) == (120, 0, 30)
    assert s.val.X.shape == (0, 4) and s.val.y.dtype == np.int64
    s = split(t, val=0.0, test=0.0)
    assert len(s.train) == 150


def test_multilabel_split_is_random():
    rng = np.random.default_rng(0)
    t = Table(
        X=rng.standard_normal((40, 3)),
        y=rng.integers(0, 2, (40, 2)),
        feature_names=["a", "b", "c"],
        target_name="l",
        task="multilabel",
    )
    s = split(t, val=0.25, test=0.25)
    assert [len(p) for p in s] == [20, 10, 10] and s.train.y.shape == (20, 2)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"val": 1.0}, r"val must be in \[0, 1\), got 1.0"),
        ({"test": -0.1}, r"test must be in \[0, 1\), got -0.1"),
        ({"val": "0.1"}, r"val must be a number in \[0, 1\)"),
        ({"val": 0.5, "test": 0.5}, r"val \+ test must be < 1"),
        ({"seed": -1}, r"seed must be an int >= 0"),
    ],
)
def test_fraction_validation(kw, match):
    with pytest.raises(ConfigError, match=match):
        split(load("iris"), **kw)


def test_rare_class_cannot_be_stratified():
    t = Table(
        X=np.zeros((10, 1)),
        y=[0] * 9 + [1],
        feature_names=["a"],
        target_name="y",
        task="binary",
    )
    with pytest.raises(DataError, match=r"class 1 has only 1 row; .* at least 2 rows") as info:
        split(t, val=0.2, test=0.2)
    assert "stratify" not in str(info.value)  # not a config field: no Python hint
    named = Table(X=np.zeros((10, 1)), y=[0] * 9 + [1], classes=["no", "yes"],
                  feature_names=["a"], target_name="y", task="binary")
    with pytest.raises(DataError, match="class 'yes' has only 1 row"):
        split(named, val=0.2, test=0.2)
    assert sum(len(p) for p in split(t, val=0.2, test=0.2, stratify=False)) == 10


# -- Standardizer --------------------------------------------------------------------


def test_standardizer_matches_scikit_learn():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4)) * [1.0, 10.0, 0.01, 1.0] + [0.0, 5.0, -3.0, 0.0]
    X[:, 3] = 0.1  # constant column: scale 1, maps to 0
    ours = Standardizer().fit(X)
    ref = StandardScaler().fit(X)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.scale_, ref.scale_, rtol=1e-12)
    assert ours.scale_[3] == 1.0
    Z = rng.standard_normal((7, 4))
    np.testing.assert_allclose(ours.transform(Z), ref.transform(Z), rtol=1e-12)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(Z)), Z, rtol=1e-12)
    np.testing.assert_allclose(Standardizer().fit_transform(X), ref.transform(X), atol=1e-12)


def test_standardizer_keeps_array_kind_and_dtype():
    X = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    s = Standardizer().fit(X)
    out = s.transform(X)
    assert out.dtype == np.float32 and out.tolist() == [[-1.0, -1.0], [1.0, 1.0]]
    t = s.transform(torch.tensor(X, dtype=torch.float64))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    torch.testing.assert_close(t, torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(s.inverse_transform(torch.tensor(out)), torch.tensor(X))
    assert s.transform(np.array([[1, 2]])).dtype == np.float32  # ints become float32


def test_standardizer_errors():
    with pytest.raises(ConfigError, match=r"Standardizer.transform: not fitted; call fit"):
        Standardizer().transform(np.zeros((2, 2)))
    s = Standardizer().fit(np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"shape \(3, 5\).*fitted on 2 features"):
        s.transform(np.zeros((3, 5)))
    with pytest.raises(DataError, match=r"must be 2-D"):
        Standardizer().fit(np.zeros(3))
    with pytest.raises(DataError, match=r"no rows"):
        Standardizer().fit(np.zeros((0, 3)))


def test_standardize_fits_on_train_only():
    s = split(load("wine"), val=0.2, test=0.2, seed=0)
    (train, val, test), scaler = standardize(s)
    ref = StandardScaler().fit(s.train.X.astype(np.float64))
    np.testing.assert_allclose(scaler.mean_, ref.mean_, rtol=1e-6)
    np.testing.assert_allclose(scaler.scale_, ref.scale_, rtol=1e-6)
    # the full-data mean differs: nothing leaked from val/test into the statistics
    assert not np.allclose(scaler.mean_, load("wine").X.mean(0), rtol=1e-3)
    np.testing.assert_allclose(train.X.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.X.std(0), 1.0, atol=1e-5)
    assert np.abs(test.X.mean(0)).max() > 0.05 and np.abs(val.X.mean(0)).max() > 0.05
    np.testing.assert_allclose(test.X, ref.transform(s.test.X.astype(np.float64)), atol=1e-5)
    for new, old in zip((train, val, test), s):
        assert new.X.dtype == np.float32
        np.testing.assert_array_equal(new.y, old.y)
