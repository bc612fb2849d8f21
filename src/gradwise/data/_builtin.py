"""Built-in datasets: scikit-learn's bundled files and seeded synthetic problems.

scikit-learn is imported inside the loaders: it takes about a second to import
and most users of :mod:`gradwise.data` only read their own files.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gradwise.data._table import Table
from gradwise.errors import ConfigError, unknown


def _int(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{field} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _noise(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"{field} must be a number >= 0, got {value!r}")
    return float(value)


# -- scikit-learn's bundled datasets (read from files inside the package, no download)


def digits() -> Table:
    """Handwritten digits: 1797 images of 8×8 pixels (values 0..16), 10 classes.

    ``image_shape`` is ``(1, 8, 8)``; ``X.reshape(-1, 1, 8, 8)`` gives the images.
    """
    from sklearn.datasets import load_digits

    b = load_digits()
    return Table(
        X=b.data,
        y=b.target,
        feature_names=list(b.feature_names),
        target_name="digit",
        task="multiclass",
        n_classes=10,
        name="digits",
        image_shape=(1, 8, 8),
        classes=[int(c) for c in b.target_names],
    )


def iris() -> Table:
    """Fisher's iris flowers: 150 × 4 measurements (cm), 3 species."""
    from sklearn.datasets import load_iris

    b = load_iris()
    return Table(
        X=b.data,
        y=b.target,
        feature_names=list(b.feature_names),
        target_name="species",
        task="multiclass",
        n_classes=3,
        name="iris",
        classes=[str(c) for c in b.target_names],
    )


def wine() -> Table:
    """Wine recognition: 178 × 13 chemical measurements, 3 cultivars."""
    from sklearn.datasets import load_wine

    b = load_wine()
    return Table(
        X=b.data,
        y=b.target,
        feature_names=list(b.feature_names),
        target_name="cultivar",
        task="multiclass",
        n_classes=3,
        name="wine",
        classes=[str(c) for c in b.target_names],
    )


def breast_cancer() -> Table:
    """Wisconsin breast cancer: 569 × 30 cell-nucleus features, binary.

    Label 1 is ``"benign"`` and 0 ``"malignant"``, as in scikit-learn.
    """
    from sklearn.datasets import load_breast_cancer

    b = load_breast_cancer()
    return Table(
        X=b.data,
        y=b.target,
        feature_names=list(b.feature_names),
        target_name="diagnosis",
        task="binary",
        n_classes=2,
        name="breast_cancer",
        classes=[str(c) for c in b.target_names],
    )


def diabetes() -> Table:
    """Diabetes progression: 442 patients × 10 baseline features, regression.

    Features are scikit-learn's scaled version (each column centred, unit L2 norm);
    the target is a disease-progression score one year later (25..346).
    """
    from sklearn.datasets import load_diabetes

    b = load_diabetes()
    return Table(
        X=b.data,
        y=b.target,
        feature_names=list(b.feature_names),
        target_name="progression",
        task="regression",
        name="diabetes",
    )


# -- synthetic -----------------------------------------------------------------------


def moons(n: int = 1000, noise: float = 0.2, seed: int = 0) -> Table:
    """Two interleaving half circles in 2-D, binary; not linearly separable.

    Args:
        n: number of points (split evenly between the two moons).
        noise: standard deviation of Gaussian noise added to each coordinate.
        seed: random seed; the same seed gives the same table.
    """
    from sklearn.datasets import make_moons

    n = _int("moons: n", n, 2)
    seed = _int("moons: seed", seed, 0)
    X, y = make_moons(n_samples=n, noise=_noise("moons: noise", noise), random_state=seed)
    return Table(
        X=X, y=y, feature_names=["x0", "x1"], target_name="moon", task="binary", name="moons"
    )


def spirals(n: int = 1000, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Table:
    """``classes`` interleaved spiral arms in 2-D, one class each.

    Arm ``k`` is the curve ``r·(cos θ, sin θ)`` with radius ``r`` evenly spaced in
    ``[0, 1]`` and angle ``θ = 2πk/K + 2π·r + ε``, ``ε ~ N(0, noise²)``: each arm
    makes one full turn, and the arms start ``2π/K`` apart. Rows are shuffled.

    Args:
        n: number of points; the arms get ``n // K`` or ``n // K + 1`` each.
        classes: number of arms ``K >= 2``.
        noise: standard deviation (radians) of the angle jitter.
        seed: random seed.

    Example:
        >>> t = spirals(n=300, classes=3)
        >>> t.X.shape, np.bincount(t.y).tolist()
        ((300, 2), [100, 100, 100])
    """
    n = _int("spirals: n", n, 1)
    k = _int("spirals: classes", classes, 2)
    noise = _noise("spirals: noise", noise)
    seed = _int("spirals: seed", seed, 0)
    rng = np.random.default_rng(seed)
    counts = [n // k + (c < n % k) for c in range(k)]
    r = np.concatenate([np.linspace(0.0, 1.0, m) for m in counts])
    y = np.repeat(np.arange(k), counts)
    theta = 2 * math.pi * y / k + 2 * math.pi * r + noise * rng.standard_normal(n)
    X = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    order = rng.permutation(n)
    return Table(
        X=X[order],
        y=y[order],
        feature_names=["x0", "x1"],
        target_name="arm",
        task="multiclass",
        n_classes=k,
        name="spirals",
    )


def classification(
    n: int = 1000, p: int = 20, informative: int = 5, classes: int = 2, seed: int = 0
) -> Table:
    """Gaussian clusters on the vertices of a hypercube (scikit-learn's ``make_classification``).

    The first ``informative`` columns carry the class signal; the other ``p − informative``
    are pure noise, which makes this a test bed for L1 feature selection. Each class has
    two clusters. Rows are shuffled.

    Args:
        n: number of rows.
        p: number of features.
        informative: number of informative features; needs ``2·classes <= 2**informative``.
        classes: number of classes (2 gives a binary task).
        seed: random seed.
    """
    from sklearn.datasets import make_classification

    n = _int("classification: n", n, 1)
    p = _int("classification: p", p, 1)
    informative = _int("classification: informative", informative, 1)
    classes = _int("classification: classes", classes, 2)
    seed = _int("classification: seed", seed, 0)
    if informative > p:
        raise ConfigError(f"classification: informative={informative} exceeds p={p}")
    if 2 * classes > 2**informative:
        raise ConfigError(
            f"classification: {classes} classes of 2 clusters need 2·classes <= "
            f"2**informative, got informative={informative}; raise informative"
        )
    X, y = make_classification(
        n_samples=n,
        n_features=p,
        n_informative=informative,
        n_redundant=0,
        n_repeated=0,
        n_classes=classes,
        n_clusters_per_class=2,
        shuffle=False,  # keep informative columns first; rows are shuffled below
        random_state=seed,
    )
    order = np.random.default_rng(seed).permutation(n)
    return Table(
        X=X[order],
        y=y[order],
        feature_names=[f"x{j}" for j in range(p)],
        target_name="class",
        task="binary" if classes == 2 else "multiclass",
        n_classes=classes,
        name="classification",
    )


def sparse_regression(
    n: int = 200, p: int = 50, k: int = 5, noise: float = 0.1, seed: int = 0
) -> Table:
    """Linear model with ``k`` of ``p`` coefficients nonzero: ``y = X·coef + ε``.

    ``X ~ N(0, 1)`` entrywise, ``ε ~ N(0, noise²)``; the ``k`` nonzero coefficients sit
    at random positions with magnitude in ``[0.5, 2]`` and random sign, so that they
    stand clear of the noise. ``Table.coef`` holds the true coefficients: use it to
    check that a lasso recovers the support.

    Example:
        >>> t = sparse_regression(k=3)
        >>> int((t.coef != 0).sum()), t.X.shape
        (3, (200, 50))
    """
    n = _int("sparse_regression: n", n, 1)
    p = _int("sparse_regression: p", p, 1)
    k = _int("sparse_regression: k", k, 0)
    if k > p:
        raise ConfigError(f"sparse_regression: k={k} nonzero coefficients exceed p={p}")
    noise = _noise("sparse_regression: noise", noise)
    seed = _int("sparse_regression: seed", seed, 0)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    coef = np.zeros(p)
    support = rng.choice(p, size=k, replace=False)
    coef[support] = rng.choice([-1.0, 1.0], size=k) * rng.uniform(0.5, 2.0, size=k)
    y = X @ coef + noise * rng.standard_normal(n)
    return Table(
        X=X,
        y=y,
        feature_names=[f"x{j}" for j in range(p)],
        target_name="y",
        task="regression",
        name="sparse_regression",
        coef=coef,
    )


_LOADERS: dict[str, Callable[..., Table]] = {
    "digits": digits,
    "iris": iris,
    "wine": wine,
    "breast_cancer": breast_cancer,
    "diabetes": diabetes,
    "moons": moons,
    "spirals": spirals,
    "classification": classification,
    "sparse_regression": sparse_regression,
}

DATASETS: tuple[str, ...] = tuple(_LOADERS)
"""Names accepted by :func:`load`."""


def load(name: str, **kw: Any) -> Table:
    """Load the built-in dataset ``name`` with the loader's options.

    Example:
        >>> load("moons", n=200, noise=0.1).X.shape
        (200, 2)
    """
    loader = _LOADERS.get(name) if isinstance(name, str) else None
    if loader is None:
        raise unknown("dataset", str(name), DATASETS)
    allowed = list(inspect.signature(loader).parameters)
    extra = sorted(set(kw) - set(allowed))
    if extra:
        raise ConfigError(
            f"dataset {name!r} got unknown option(s) {', '.join(map(repr, extra))}; "
            f"allowed options: {', '.join(allowed) or 'none'}"
        )
    return loader(**kw)
