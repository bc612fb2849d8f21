"""Parameter selection by name pattern, shared by freezing, groups and plans.

A pattern is a shell-style glob (``fnmatch``, case-sensitive) matched against
dotted parameter names. A pattern that names a module selects every parameter
under it: ``"encoder.layer.0"`` matches ``encoder.layer.0.attention.query.weight``
but not ``encoder.layer.10...``. Globs are what a YAML file reads best:
``"encoder.layer.[0-3]"``, ``"*.bias"``, ``"*norm*"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from torch import nn

from gradwise.errors import ConfigError, closest


def as_patterns(field: str, patterns: str | Iterable[str]) -> tuple[str, ...]:
    """One pattern or several as a tuple of non-empty strings."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    try:
        out = tuple(patterns)
    except TypeError:
        raise ConfigError(f"{field} must be a name pattern or a list of them, got {patterns!r}") from None
    if not out or not all(isinstance(p, str) and p for p in out):
        raise ConfigError(f"{field} must be non-empty name patterns, got {patterns!r}")
    return out


def matches(name: str, pattern: str) -> bool:
    """True when ``pattern`` selects the dotted ``name`` itself or a module above it."""
    return fnmatchcase(name, pattern) or fnmatchcase(name, pattern + ".*")


def select(
    model: nn.Module, patterns: Sequence[str], field: str = "patterns"
) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` pairs of ``model`` that any pattern selects.

    Raises:
        ConfigError: a pattern selects nothing; the message names the closest
            module path.
    """
    named = list(model.named_parameters())
    picked: list[tuple[str, nn.Parameter]] = []
    for pattern in patterns:
        if not any(matches(n, pattern) for n, _ in named):
            modules = [m for m, _ in model.named_modules() if m]
            hint = closest(pattern, modules + [n for n, _ in named])
            raise ConfigError(f"{field}: {pattern!r} matches no parameter of the model{hint}")
    for name, p in named:
        if any(matches(name, pat) for pat in patterns):
            picked.append((name, p))
    return picked
