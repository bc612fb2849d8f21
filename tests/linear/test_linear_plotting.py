"""Plots: PNG files of the path, the CV curve and coefficients side by side."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from gradwise.errors import DataError
from gradwise.linear import ElasticNet, ElasticNetCV, Lasso, Ridge, enet_path
from gradwise.linear.plotting import plot_coefficients, plot_cv, plot_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    return img


def test_plot_path(diabetes, tmp_path):
    X, y = diabetes
    lams, coefs, _ = enet_path(X, y, 1.0, n_lams=30)
    out = plot_path(lams, coefs, tmp_path / "sub" / "path.png",
                    feature_names=[f"f{j}" for j in range(10)])
    assert out == tmp_path / "sub" / "path.png"
    img = read_png(out)
    assert img[..., :3].std() > 0.05  # lines were drawn, not a blank canvas
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temporary file left


def test_plot_cv_and_coefficients(diabetes, tmp_path):
    X, y = diabetes
    cv = ElasticNetCV(alpha=1.0, n_lams=20, cv=3).fit(X, y)
    read_png(plot_cv(cv, tmp_path / "cv.png"))
    models = {"L1": Lasso(lam=0.5).fit(X, y), "L2": Ridge(lam=0.5).fit(X, y),
              "EN": ElasticNet(lam=0.5, alpha=0.5).fit(X, y)}
    read_png(plot_coefficients(models, tmp_path / "coef.png"))


def test_plot_errors(tmp_path):
    with pytest.raises(DataError, match=r"coefs must be \(p, 3\)"):
        plot_path(np.ones(3), np.ones((2, 4)), tmp_path / "x.png")
    with pytest.raises(DataError, match="fitted CV estimator"):
        plot_cv(Lasso(), tmp_path / "x.png")
    with pytest.raises(DataError, match="2 names for 3 features"):
        plot_path(np.ones(2), np.ones((3, 2)), tmp_path / "x.png", feature_names=["a", "b"])
    assert not (tmp_path / "x.png").exists()
