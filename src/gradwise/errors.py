"""Exception classes for errors a user can cause.

Every gradwise error names the field, line or value at fault and what is
allowed, so that a user can fix it without reading a traceback. They subclass
the built-in exception a Python user would expect (``ValueError`` for bad
values), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GradwiseError(Exception):
    """Base class of every error gradwise raises on purpose."""


class ConfigError(GradwiseError, ValueError):
    """A configuration field has a bad value or an unknown name."""


class DataError(GradwiseError, ValueError):
    """Input data is malformed: a missing column, NaN/inf, a non-numeric value."""


class HeadError(GradwiseError, ValueError):
    """A model, loss and labels do not fit the chosen output head."""


class CheckpointError(GradwiseError, ValueError):
    """A checkpoint or adapter file is missing, corrupt or does not fit the model."""


def closest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``.

    >>> closest("relux", ["relu", "tanh"])
    " (did you mean 'relu'?)"
    """
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def unknown(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """Build the error for an unknown registry name, listing what is allowed.

    >>> str(unknown("activation", "relux", ["relu", "tanh"]))
    "unknown activation 'relux' (did you mean 'relu'?); allowed: relu, tanh"
    """
    choices = sorted(choices)
    return ConfigError(
        f"unknown {kind} {name!r}{closest(name, choices)}; allowed: {', '.join(choices)}"
    )
