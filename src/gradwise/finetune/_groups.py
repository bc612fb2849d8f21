"""Layer groups: a model's parameters cut into blocks ordered from input to output.

Fine-tuning treats a network as a stack: the lowest groups hold general
features (edges, token embeddings), the top ones task-specific ones. Freezing,
gradual unfreezing and discriminative learning rates all act on such groups.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from gradwise.errors import ConfigError, closest
from gradwise.finetune._select import as_patterns, matches

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_NORMS = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
)


@dataclass(frozen=True, eq=False)
class LayerGroup:
    """A named block of parameters; :func:`layer_groups` returns them input to output.

    Attributes:
        name: the module path of the block (``"encoder.layer.3"``, ``"head"``),
            or the pattern that built it.
        params: ``(name, parameter)`` pairs, names as in ``model.named_parameters()``.
        modules: ``(path, module)`` of the modules the group covers (its norm
            layers are found there).
    """

    name: str
    params: tuple[tuple[str, nn.Parameter], ...]
    modules: tuple[tuple[str, nn.Module], ...] = ()

    @property
    def names(self) -> list[str]:
        """The parameter names of the group."""
        return [n for n, _ in self.params]

    @property
    def numel(self) -> int:
        """Number of scalar parameters in the group."""
        return sum(p.numel() for _, p in self.params)

    @property
    def trainable(self) -> bool:
        """True when every parameter of the group requires a gradient."""
        return all(p.requires_grad for _, p in self.params)

    def __repr__(self) -> str:
        return f"LayerGroup({self.name!r}, tensors={len(self.params)}, numel={self.numel})"


def _has_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _is_norm(module: nn.Module) -> bool:
    # Hugging Face models define their own RMSNorm/LayerNorm classes (T5LayerNorm, LlamaRMSNorm).
    return isinstance(module, _NORMS) or type(module).__name__.endswith("Norm")


def _is_stack(module: nn.Module) -> bool:
    """A container of >= 2 children of one class that all hold parameters (transformer layers)."""
    if not isinstance(module, (nn.ModuleList, nn.Sequential)):
        return False
    kids = list(module.children())
    return len(kids) >= 2 and len({type(k) for k in kids}) == 1 and all(map(_has_params, kids))


def _holds_stack(module: nn.Module) -> bool:
    return any(_is_stack(m) for m in module.modules())


@dataclass
class _Unit:
    name: str
    modules: list[tuple[str, nn.Module]]
    own: list[tuple[str, nn.Parameter]]  # parameters set directly on an expanded module

    def kinds(self) -> set[type]:
        return {type(m) for _, m in self.modules}


def _units(module: nn.Module, prefix: str) -> list[_Unit]:
    """Cut ``module`` into units: expand containers and modules holding a layer stack."""
    units: list[_Unit] = []
    own = [(f"{prefix}.{n}" if prefix else n, p) for n, p in module.named_parameters(recurse=False)]
    if own:
        units.append(_Unit("+".join(n for n, _ in own), [], own))
    for name, child in module.named_children():
        if not _has_params(child):
            continue
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, _CONTAINERS) or _holds_stack(child):
            sub = _units(child, path)
            # A container that yields one unit (an MLP block: Linear + norm) is that unit.
            units.extend(sub if len(sub) > 1 else [_Unit(path, [(path, child)], [])])
        elif _is_norm(child) and units:
            # A norm layer belongs to the layer it normalizes: the one before it
            # (Conv -> BatchNorm, the last block -> final LayerNorm).
            units[-1].modules.append((path, child))
        elif isinstance(child, nn.Embedding) and units and units[-1].kinds() == {nn.Embedding}:
            units[-1].modules.append((path, child))  # token + position embeddings
        else:
            units.append(_Unit(path, [(path, child)], []))
    return units


def _auto_groups(model: nn.Module) -> list[LayerGroup]:
    if not any(_has_params(c) for c in model.children()):
        return [LayerGroup("model", tuple(model.named_parameters()), (("", model),))]
    units = _units(model, "")
    # Open wrappers: a model whose only unit is one module (a backbone inside a
    # task model) is cut inside that module instead.
    while len(units) == 1 and len(units[0].modules) == 1 and not units[0].own:
        path, inner = units[0].modules[0]
        sub = _units(inner, path)
        if len(sub) < 2:
            break
        units = sub
    ids = {id(p): n for n, p in model.named_parameters()}  # dedupes tied weights
    seen: set[int] = set()
    groups = []
    for u in units:
        params = list(u.own)
        for _, m in u.modules:
            params += list(m.named_parameters())
        picked = []
        for _, p in params:
            if id(p) in ids and id(p) not in seen:
                seen.add(id(p))
                picked.append((ids[id(p)], p))
        if picked:
            groups.append(LayerGroup(u.name, tuple(picked), tuple(u.modules)))
    return groups


def _pattern_groups(
    model: nn.Module, patterns: Sequence[str] | Mapping[str, str | Sequence[str]]
) -> list[LayerGroup]:
    if isinstance(patterns, str):
        raise ConfigError(
            f"layer_groups: patterns must be a list of patterns (one per group) or a mapping "
            f"name -> patterns, got the string {patterns!r}"
        )
    if isinstance(patterns, Mapping):
        spec = [(str(k), as_patterns(f"layer_groups[{k!r}]", v)) for k, v in patterns.items()]
    else:
        spec = [(p, as_patterns("layer_groups", p)) for p in patterns]
    if not spec:
        raise ConfigError("layer_groups: patterns is empty; give one pattern per group")
    named = list(model.named_parameters())
    buckets: list[list[tuple[str, nn.Parameter]]] = [[] for _ in spec]
    loose = []
    for pname, p in named:
        for i, (_, pats) in enumerate(spec):
            if any(matches(pname, pat) for pat in pats):
                buckets[i].append((pname, p))
                break
        else:
            loose.append(pname)
    module_paths = [m for m, _ in model.named_modules() if m]
    for (gname, pats), bucket in zip(spec, buckets):
        if not bucket:
            raise ConfigError(
                f"layer_groups: group {gname!r} ({', '.join(pats)}) gets no parameter: an earlier "
                f"pattern took them or none matches{closest(pats[0], module_paths)}"
            )
    if loose:
        shown = ", ".join(loose[:4]) + (", ..." if len(loose) > 4 else "")
        raise ConfigError(
            f"layer_groups: {len(loose)} parameters match no pattern ({shown}); every parameter "
            "needs a group (end the list with '*' to catch the rest)"
        )
    groups = []
    for (gname, pats), bucket in zip(spec, buckets):
        mods = tuple(
            (path, m)
            for path, m in model.named_modules()
            if path and any(matches(path, pat) for pat in pats)
        )
        groups.append(LayerGroup(gname, tuple(bucket), mods))
    return groups


def layer_groups(
    model: nn.Module, patterns: Sequence[str] | Mapping[str, str | Sequence[str]] | None = None
) -> list[LayerGroup]:
    """Cut ``model``'s parameters into groups ordered from input to output.

    Automatic grouping (``patterns=None``) follows the registration order of
    the modules, which is their forward order in ``nn.Sequential``, gradwise's
    ``MLP``, torchvision-style CNNs and Hugging Face models:

    * containers (``Sequential``, ``ModuleList``, ``ModuleDict``) are opened
      and each child holding parameters becomes a group (``block0``, ``head``);
    * a module holding a stack of identical layers (a transformer's
      ``encoder.layer``, GPT-2's ``h``) is opened down to the stack, so each
      transformer layer is its own group, with the embeddings below and the
      pooler/classifier above;
    * a normalization layer joins the group before it (``Conv2d`` +
      ``BatchNorm2d``, the last layer + the final ``LayerNorm``), and
      consecutive embeddings join (token + position);
    * tied weights appear once, in the first group that holds them.

    For a BERT classifier this gives ``bert.embeddings``,
    ``bert.encoder.layer.0`` ... ``bert.encoder.layer.{L-1}``, ``bert.pooler``,
    ``classifier``.

    Args:
        model: any ``nn.Module``.
        patterns: explicit groups instead, input to output: a list of name
            patterns (each one group, named by its pattern) or a mapping
            ``name -> pattern(s)``. A parameter goes to the first group whose
            pattern matches; every parameter must land in a group.

    Returns:
        the :class:`LayerGroup` list; ``groups[-1]`` is the head.

    Example:
        >>> from gradwise.nn import MLP
        >>> [g.name for g in layer_groups(MLP(4, [8, 8], 2))]
        ['block0', 'block1', 'head']
        >>> [g.name for g in layer_groups(MLP(4, [8], 2), {"body": "block*", "top": "head"})]
        ['body', 'top']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"layer_groups: model must be a torch.nn.Module, got {type(model).__name__}")
    if not _has_params(model):
        raise ConfigError("layer_groups: the model has no parameters")
    if patterns is not None:
        return _pattern_groups(model, patterns)
    return _auto_groups(model)


def batchnorms(group: LayerGroup) -> Iterator[nn.Module]:
    """The batch-norm layers inside a group's modules."""
    for _, m in group.modules:
        for sub in m.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                yield sub
