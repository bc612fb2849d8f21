"""Choose the coordinate-descent kernels: numba when installed, numpy otherwise.

The numba kernels are the default because they are many times faster
(``benchmarks/bench_linear.py --backends``); the numpy kernels run the same
algorithm with one BLAS-1 call per coordinate and keep the package usable
without numba. numba is imported on the first fit, not with the package.
`use_backend` switches for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace

from gradwise._optional import require
from gradwise.errors import unknown

from . import _cd_numpy


def _has_numba() -> bool:
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # a broken or blocked installation
        return False


BACKENDS = ("numba", "numpy") if _has_numba() else ("numpy",)
_choice = [BACKENDS[0]]
_loaded: dict[str, object] = {}


def _numba() -> tuple[SimpleNamespace, ModuleType]:
    """(kernels namespace, path drivers), imported and cached on first use."""
    if "numba" not in _loaded:
        from . import _cd_numba, _cd_numba_gram, _path_numba

        kernels = SimpleNamespace(cd_residual=_cd_numba.cd_residual,
                                  cd_gram=_cd_numba_gram.cd_gram,
                                  grad_dense=_cd_numba.grad_dense)
        _loaded["numba"] = (kernels, _path_numba)
    return _loaded["numba"]


def kernels() -> ModuleType | SimpleNamespace:
    """The kernels in use now: ``cd_residual``, ``cd_gram`` and ``grad_dense``."""
    return _numba()[0] if _choice[0] == "numba" else _cd_numpy


def path_driver() -> ModuleType | None:
    """The compiled per-lam loop (`_path_numba`) with the numba backend, else None."""
    return _numba()[1] if _choice[0] == "numba" else None


def backend() -> str:
    """Name of the backend in use: ``"numba"`` or ``"numpy"``."""
    return _choice[0]


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the enclosed fits with the ``"numba"`` or ``"numpy"`` kernels."""
    if name == "numba" and name not in BACKENDS:
        require("numba", "fast", "the numba backend")
    if name not in BACKENDS:
        raise unknown("backend", name, BACKENDS)
    previous = _choice[0]
    _choice[0] = name
    try:
        yield
    finally:
        _choice[0] = previous
