"""Choose the coordinate-descent kernels: numba when installed, numpy otherwise.

The numba kernels are the default because they are several times faster
(see ``benchmarks/bench_linear.py --backends``); the numpy kernels run the
same algorithm one BLAS-1 call per coordinate and keep the package usable
without numba. `use_backend` switches for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace

from gradwise.errors import unknown

from . import _cd_numpy

try:  # numba is optional (the `fast` extra)
    from . import _cd_numba as _numba_residual
    from . import _cd_numba_gram, _path_numba

    _cd_numba = SimpleNamespace(cd_residual=_numba_residual.cd_residual,
                                cd_gram=_cd_numba_gram.cd_gram,
                                grad_dense=_numba_residual.grad_dense)
except ImportError:  # pragma: no cover - exercised only without numba
    _cd_numba = _path_numba = None

BACKENDS = ("numba", "numpy") if _cd_numba is not None else ("numpy",)
_current: list[ModuleType | SimpleNamespace] = [_cd_numba if _cd_numba is not None else _cd_numpy]


def kernels() -> ModuleType | SimpleNamespace:
    """The module providing ``cd_residual`` and ``cd_gram`` in use now."""
    return _current[0]


def path_driver() -> ModuleType | None:
    """The compiled per-lam loop (`_path_numba`) with the numba backend, else None."""
    return _path_numba if _current[0] is _cd_numba else None


def backend() -> str:
    """Name of the backend in use: ``"numba"`` or ``"numpy"``."""
    return "numba" if _current[0] is _cd_numba else "numpy"


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the enclosed fits with the ``"numba"`` or ``"numpy"`` kernels."""
    if name not in BACKENDS:
        raise unknown("backend", name, BACKENDS)
    previous = _current[0]
    _current[0] = _cd_numba if name == "numba" else _cd_numpy
    try:
        yield
    finally:
        _current[0] = previous
