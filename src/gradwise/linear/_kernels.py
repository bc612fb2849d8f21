"""One kernel source, two backends: numba when installed, plain numpy otherwise.

The coordinate-descent kernels (`_cd`, `_cd_gram`) and the per-lam path
loop (`_cd_path`) are written once. Each source file is loaded as two module
instances, e.g. ``gradwise.linear._cd_numba`` (every function compiled by
``numba.njit(cache=True, nogil=True)``) and ``gradwise.linear._cd_numpy``
(the same functions run as Python). A source reads its flavour from its
module name (`is_jit`) and gets its decorators from `decorators`; only the
few innermost primitives (`_cd_prims`: a column dot product, a residual
norm, the strong-rule scan, the coordinate sweep) are written twice, as explicit loops for numba
and as vectorised numpy for Python, so that the fallback does not crawl
through scalar loops.

numba is the default because it is many times faster
(``benchmarks/bench_linear.py --backends``); it is imported on the first fit,
not with the package. ``GRADWISE_LINEAR_BACKEND=numpy`` forces the numpy
backend for a process; `use_backend` switches inside one (tests, benchmarks).
numba caches the compiled kernels on disk; `_drop_stale_cache` discards them
when any kernel source changed (numba itself checks only a function's own file).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
from collections import namedtuple
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

from gradwise._io import write_text
from gradwise._optional import require
from gradwise.errors import ConfigError, unknown


def _has_numba() -> bool:
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # a broken or blocked installation
        return False


BACKENDS = ("numba", "numpy") if _has_numba() else ("numpy",)
ENV_VAR = "GRADWISE_LINEAR_BACKEND"


def _default() -> str:
    name = os.environ.get(ENV_VAR, "").strip().lower()
    if not name:
        return BACKENDS[0]
    if name == "numba" and name not in BACKENDS:
        require("numba", "fast", "the numba backend")
    if name not in BACKENDS:
        raise ConfigError(f"{ENV_VAR}={name!r} is not a backend; choose one of {BACKENDS}")
    return name


_choice: list[str] = []


def backend() -> str:
    """Name of the backend in use: ``"numba"`` or ``"numpy"``."""
    if not _choice:
        _choice.append(_default())
    return _choice[0]


def is_jit(module_name: str) -> bool:
    """Whether the kernel module instance ``module_name`` is the compiled one."""
    return module_name.endswith("_numba")


def backend_of(jit: bool) -> str:
    """The backend name of a compiled (True) or plain (False) kernel instance."""
    return "numba" if jit else "numpy"


def _identity(fn: Callable) -> Callable:
    return fn


def decorators(jit: bool) -> tuple[Callable, Callable]:
    """``(njit, njit_fast)`` for a kernel source: numba's, or the identity.

    ``njit_fast`` also lets LLVM reassociate floating-point sums, which
    vectorises the dot-product reductions. Every compile is cached on disk.
    """
    if not jit:
        return _identity, _identity
    import numba

    opts = {"cache": True, "nogil": True, "error_model": "numpy"}
    return numba.njit(**opts), numba.njit(fastmath={"reassoc", "contract"}, **opts)


def inline_decorator(jit: bool) -> Callable:
    """numba's ``njit(inline="always")`` (the identity for numpy) for the per-coordinate
    primitives: inlined at numba's IR level, a column dot product over a sparse column
    of a few non-zeros costs no call (a call passing the packed arrays cost ~10x the work).
    """
    if not jit:
        return _identity
    import numba

    return numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")


_KERNEL_SOURCES = (
    "_kernels.py", "_cd_screen.py", "_cd_prims.py", "_cd.py", "_cd_gram.py", "_cd_path.py",
    "_logistic_cd.py",
)
_checked: list[bool] = []


def _drop_stale_cache() -> None:
    """Delete numba's on-disk kernels when any kernel source changed since they were cached.

    numba keys a cached function by its own file's timestamp only, so a kernel
    that inlines or calls a primitive from another file would load the old
    machine code after that file changed (an edit, a merge). A hash of all
    kernel sources, stored beside the cache, catches that. Best effort: an
    unwritable cache directory is left alone (numba then uses its own).
    """
    if _checked:
        return
    _checked.append(True)
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for fname in _KERNEL_SOURCES:
        digest.update((here / fname).read_bytes())
    cache = Path(os.environ.get("NUMBA_CACHE_DIR") or here / "__pycache__")
    stamp = cache / "gradwise_kernels.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return
        for stem in _KERNEL_SOURCES:
            for f in cache.glob(f"{stem[:-3]}.*.nb[ic]"):
                f.unlink(missing_ok=True)
        write_text(stamp, digest.hexdigest())
    except OSError:
        pass


def load(stem: str, name: str) -> ModuleType:
    """The ``name`` backend's instance of the kernel source ``stem`` (``"_cd"``, ``"_cd_path"``)."""
    full = f"{__package__}.{stem}_{name}"
    mod = sys.modules.get(full)
    if mod is None:
        if name == "numba":
            _drop_stale_cache()
        spec = importlib.util.spec_from_file_location(full, Path(__file__).with_name(stem + ".py"))
        if spec is None or spec.loader is None:  # pragma: no cover - files ship with the package
            raise ImportError(f"kernel source {stem}.py is missing")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[full] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            del sys.modules[full]
            raise
    return mod


def kernels() -> ModuleType:
    """The kernels in use now (`_cd`): ``cd_residual``, ``cd_gram``, ``grad_dense``, ..."""
    return load("_cd", backend())


def path_driver() -> ModuleType:
    """The per-lam path loop (`_cd_path`) of the backend in use."""
    return load("_cd_path", backend())


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the enclosed fits with the ``"numba"`` or ``"numpy"`` kernels."""
    if name == "numba" and name not in BACKENDS:
        require("numba", "fast", "the numba backend")
    if name not in BACKENDS:
        raise unknown("backend", name, BACKENDS)
    previous = backend()
    _choice[0] = name
    try:
        yield
    finally:
        _choice[0] = previous


# The arrays the kernels read, packed so that no kernel takes dozens of arguments.
# Residual mode (X dense as its column-major ravel, or CSC arrays with sparse=True):
# X~ = X - 1 m^T is never formed; the residual is stored as r + s, s = m . b.
Data = namedtuple("Data", "X n data indices indptr sparse w wsum zc H m q GU free fpos")
# Covariance mode: G = X~^T W X~, q = X~^T W zc, zz = zc^T W zc (glmnet's covariance updates).
Gram = namedtuple("Gram", "G q zz H GU free fpos")
# Per-path settings of the path loop: stop at gap <= tol, at most chunk epochs per lam.
Opts = namedtuple("Opts", "positive form_b tol chunk")
