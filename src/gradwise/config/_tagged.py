"""Config models generated from a registry: one model per entry, discriminated by ``name``.

An optimizer alias or a schedule class is the single source of truth for its
options: :func:`tagged_union` turns each registry entry's signature into a
pydantic model whose fields are exactly that entry's arguments, with the same
defaults, so every option can be set from YAML and a misspelled one is
reported with the allowed ones. Entries registered later get a model
automatically. Only the options a user set are written back
(``model_dump`` keeps ``name`` and the set fields), so a saved config never
records a default that did not come from the entry itself.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Tag,
    TypeAdapter,
    create_model,
    model_serializer,
)

from gradwise.config._base import Strict
from gradwise.errors import unknown


class TaggedConfig(Strict):
    """Base of a generated model: ``name`` picks the entry; only set options are dumped."""

    name: str

    @model_serializer(mode="wrap")
    def _set_only(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        data = handler(self)
        keep = self.model_fields_set | {"name"}
        return {k: v for k, v in data.items() if k in keep}

    def options(self) -> dict[str, Any]:
        """The options the user set, as plain values (the entry's defaults fill the rest)."""
        data = self.model_dump(mode="python")
        data.pop("name")
        return data


def model_from_signature(
    base: type[TaggedConfig],
    name: str,
    fields: Mapping[str, tuple[Any, Any]],
) -> type[TaggedConfig]:
    """A ``base`` subclass with ``name: Literal[name]`` and ``fields`` (type, default)."""
    title = "".join(p.capitalize() for p in name.split("_")) + base.__name__.removesuffix("Base")
    spec: dict[str, Any] = {"name": (Literal[name], name)}
    for field, (ann, default) in fields.items():
        try:
            TypeAdapter(ann)
        except Exception:  # noqa: BLE001 - a type YAML cannot express: accept any value
            ann = Any
        spec[field] = (ann, default)
    return create_model(title, __base__=base, **spec)


def tagged_union(kind: str, models: Mapping[str, type[BaseModel]], default: str | None) -> Any:
    """An annotated union of ``models`` picked by the ``name`` key (``default`` when absent)."""

    def tag(v: Any) -> str | None:
        if isinstance(v, Mapping):
            return v.get("name", default)
        return getattr(v, "name", None)

    def known(v: Any) -> Any:
        name = tag(v)
        if not isinstance(name, str) or name not in models:
            raise ValueError(str(unknown(kind, str(name), models)))
        return v

    members = tuple(Annotated[m, Tag(n)] for n, m in models.items())
    return Annotated[Union[members], Discriminator(tag), BeforeValidator(known)]  # noqa: UP007


def union_members(ann: Any) -> dict[str, type[BaseModel]]:
    """The ``{name: model}`` of a (possibly Optional) tagged union annotation, else ``{}``."""
    found: dict[str, type[BaseModel]] = {}
    stack = [ann]
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, TaggedConfig):
            default = a.model_fields["name"].default
            if isinstance(default, str):
                found[default] = a
        stack.extend(typing.get_args(a))
    return found
