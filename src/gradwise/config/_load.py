"""Reading a YAML config, applying ``--set`` overrides, validating it and writing it back.

Every error names the file or field path, the bad value and what is allowed,
and suggests the closest key for a misspelled one.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from gradwise._io import write_text
from gradwise.config._run import RunConfig
from gradwise.config._tagged import union_members
from gradwise.errors import ConfigError


def _walk(model: type[BaseModel], loc: tuple) -> tuple[list[str], Any]:
    """The user's path for a pydantic error location (union tags dropped) and the model at its end."""
    cls: Any = model
    path: list[str] = []
    members: dict[str, type[BaseModel]] = {}
    for part in loc:
        if members:
            if part in members:  # the tag pydantic adds for the chosen union member
                cls, members = members[part], {}
                continue
            members = {}
        path.append(str(part))
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            cls = None
            continue
        ann = field.annotation
        members = union_members(ann)
        cls = None
        for arg in (ann, *getattr(ann, "__args__", ())):  # unwrap Optional[Model]
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                cls = arg
    return path, cls


def _describe(exc: ValidationError, model: type[BaseModel]) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            parent, cls = _walk(model, loc[:-1])
            allowed = sorted(getattr(cls, "model_fields", {}))
            path = ".".join([*parent, str(loc[-1])])
            match = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f" (did you mean {match[0]!r}?)" if match else ""
            lines.append(f"{path}: unknown field{hint}; allowed: {', '.join(allowed)}")
            continue
        path = ".".join(_walk(model, loc)[0]) or "<root>"
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        if msg.startswith("unknown ") and isinstance(value, dict) and "name" in value:
            path += ".name"  # an unknown optimizer or schedule name
        quoted = isinstance(value, str) and repr(value) in msg
        shown = "" if isinstance(value, (dict, BaseModel)) or "got " in msg or quoted else f", got {value!r}"
        lines.append(f"{path}: {msg}{shown}")
    return "invalid config:\n  " + "\n  ".join(lines)


def parse_config(raw: dict[str, Any], model: type[BaseModel] = RunConfig) -> Any:
    """Validate a config dict; raise :class:`ConfigError` naming each bad field.

    >>> cfg = parse_config({"name": "digits", "data": {"name": "digits"}})
    >>> cfg.optimizer.name, cfg.training.epochs
    ('adam', 20)
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of fields, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, model)) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides in place; values are parsed as YAML.

    >>> apply_overrides({"optimizer": {"lr": 0.1}}, ["optimizer.lr=0.01", "name=x"])
    {'optimizer': {'lr': 0.01}, 'name': 'x'}
    """
    if overrides and not isinstance(raw, dict):
        raise ConfigError(f"--set needs a config that is a mapping of fields, got a {type(raw).__name__}")
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key.path=value, got {item!r}")
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
            node = child
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"--set {key}: {text!r} is not a YAML value ({getattr(exc, 'problem', exc)}); "
                "quote a string, write a list as [a, b]"
            ) from None
        node[parts[-1]] = value
    return raw


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; errors name the file and line."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.yaml"))[:5]
        hint = f" such as {path / found[0]}" if found else ""
        raise ConfigError(f"{path} is a directory; give a config file{hint}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty; a config is a mapping of fields (key: value)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of fields (key: value), got a {type(raw).__name__}")
    return raw


def load_config(
    path: str | Path, overrides: list[str] | None = None, model: type[BaseModel] = RunConfig
) -> Any:
    """Read, override and validate a YAML config file."""
    raw = apply_overrides(read_yaml(path), list(overrides or []))
    try:
        return parse_config(raw, model)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def to_yaml(cfg: BaseModel) -> str:
    """The YAML text of a config: every field, except optimizer and schedule options left unset."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def dump_config(cfg: BaseModel, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    write_text(path, to_yaml(cfg))
