import math

import numpy as np
import pytest
import sklearn.datasets as skd

from gradwise.data import (
    DATASETS,
    classification,
    digits,
    load,
    moons,
    sparse_regression,
    spirals,
)
from gradwise.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "shape", "task", "k", "out", "loader"),
    [
        ("digits", (1797, 64), "multiclass", 10, 10, skd.load_digits),
        ("iris", (150, 4), "multiclass", 3, 3, skd.load_iris),
        ("wine", (178, 13), "multiclass", 3, 3, skd.load_wine),
        ("breast_cancer", (569, 30), "binary", 2, 1, skd.load_breast_cancer),
        ("diabetes", (442, 10), "regression", None, 1, skd.load_diabetes),
    ],
)
def test_bundled_datasets(name, shape, task, k, out, loader):
    t = load(name)
    ref = loader()
    assert (t.name, t.X.shape, t.task, t.n_classes, t.out_features) == (name, shape, task, k, out)
    assert t.X.dtype == np.float32
    np.testing.assert_array_equal(t.X, ref.data.astype(np.float32))
    assert t.feature_names == list(ref.feature_names)
    if task == "regression":
        assert t.y.dtype == np.float32 and t.y.shape == (shape[0],)
        np.testing.assert_array_equal(t.y, ref.target.astype(np.float32))
        assert t.classes is None
    else:
        assert t.y.dtype == np.int64
        np.testing.assert_array_equal(t.y, ref.target)
        assert len(t.classes) == k and set(np.unique(t.y)) == set(range(k))


def test_digits_images():
    t = digits()
    assert t.image_shape == (1, 8, 8)
    images = skd.load_digits().images
    np.testing.assert_array_equal(t.X.reshape(-1, *t.image_shape)[:, 0], images)
    assert t.classes == list(range(10))


def test_breast_cancer_label_meaning():
    t = load("breast_cancer")
    assert t.classes == ["malignant", "benign"]
    assert np.bincount(t.y).tolist() == [212, 357]


@pytest.mark.parametrize("name", ["moons", "spirals", "classification", "sparse_regression"])
def test_synthetic_is_seeded(name):
    a, b, c = load(name, seed=3), load(name, seed=3), load(name, seed=4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    assert a.X.dtype == np.float32


def test_moons_matches_scikit_learn():
    t = moons(n=300, noise=0.1, seed=7)
    X, y = skd.make_moons(n_samples=300, noise=0.1, random_state=7)
    np.testing.assert_array_equal(t.X, X.astype(np.float32))
    np.testing.assert_array_equal(t.y, y)
    assert (t.task, t.n_classes, t.out_features) == ("binary", 2, 1)


def test_spirals_geometry_without_noise():
    t = spirals(n=301, classes=4, noise=0.0, seed=0)
    assert t.X.shape == (301, 2) and (t.task, t.n_classes) == ("multiclass", 4)
    assert np.bincount(t.y).tolist() == [76, 75, 75, 75]
    assert not np.array_equal(t.y, np.sort(t.y))  # rows are shuffled
    X = t.X.astype(np.float64)
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.min() == pytest.approx(0.0, abs=1e-7) and r.max() == pytest.approx(1.0)
    # on arm k the angle is 2πk/K + 2π·r (mod 2π)
    expected = 2 * math.pi * t.y / 4 + 2 * math.pi * r
    diff = np.angle(np.exp(1j * (np.arctan2(X[:, 1], X[:, 0]) - expected)))
    assert np.abs(diff[r > 1e-3]).max() < 1e-5


def test_spirals_noise_jitters_the_angle():
    a = spirals(n=300, noise=0.0, seed=0)
    b = spirals(n=300, noise=0.2, seed=0)
    ra, rb = (np.sort(np.hypot(*t.X.T)) for t in (a, b))
    np.testing.assert_allclose(ra, rb, atol=1e-6)  # radii unchanged, only angles move
    assert not np.allclose(a.X, b.X)


def test_classification_signal_sits_in_the_informative_columns():
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    t = classification(n=600, p=20, informative=5, classes=2, seed=1)
    assert t.X.shape == (600, 20) and t.task == "binary"
    acc_info = cross_val_score(KNeighborsClassifier(), t.X[:, :5], t.y, cv=3).mean()
    acc_noise = cross_val_score(KNeighborsClassifier(), t.X[:, 5:], t.y, cv=3).mean()
    assert acc_info > 0.85 and acc_noise < 0.6
    t3 = classification(n=300, classes=3)
    assert (t3.task, t3.n_classes, t3.out_features) == ("multiclass", 3, 3)
    assert sorted(set(t3.y.tolist())) == [0, 1, 2]


def test_sparse_regression_true_coefficients():
    t = sparse_regression(n=400, p=30, k=4, noise=0.1, seed=2)
    assert t.coef.shape == (30,) and np.count_nonzero(t.coef) == 4
    nz = np.abs(t.coef[t.coef != 0])
    assert nz.min() >= 0.5 and nz.max() <= 2.0
    X = t.X.astype(np.float64)
    residual = t.y - X @ t.coef
    assert residual.std() == pytest.approx(0.1, rel=0.15)
    fit = np.linalg.lstsq(X, t.y.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(fit, t.coef, atol=0.03)
    assert np.count_nonzero(sparse_regression(k=0).coef) == 0


def test_registry():
    assert DATASETS == (
        "digits",
        "iris",
        "wine",
        "breast_cancer",
        "diabetes",
        "moons",
        "spirals",
        "classification",
        "sparse_regression",
    )
    assert load("spirals", n=90, classes=3).X.shape == (90, 2)
    with pytest.raises(ConfigError, match=r"unknown dataset 'iriss' \(did you mean 'iris'\?\)"):
        load("iriss")
    with pytest.raises(
        ConfigError,
        match=r"'moons' got unknown option\(s\) 'size'; allowed options: n, noise, seed",
    ):
        load("moons", size=3)
    with pytest.raises(
        ConfigError, match=r"'iris' got unknown option\(s\) 'n'; allowed options: none"
    ):
        load("iris", n=3)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: moons(n=1), r"moons: n must be an int >= 2, got 1"),
        (lambda: moons(noise=-0.1), r"moons: noise must be a number >= 0"),
        (lambda: spirals(classes=1), r"spirals: classes must be an int >= 2, got 1"),
        (lambda: spirals(seed="a"), r"spirals: seed must be an int >= 0"),
        (lambda: classification(p=3, informative=5), r"informative=5 exceeds p=3"),
        (lambda: classification(informative=2, classes=3), r"raise informative"),
        (lambda: sparse_regression(p=3, k=4), r"k=4 nonzero coefficients exceed p=3"),
        (lambda: sparse_regression(n=2.5), r"n must be an int >= 1, got 2.5"),
    ],
)
def test_bad_synthetic_arguments(call, match):
    with pytest.raises(ConfigError, match=match):
        call()
