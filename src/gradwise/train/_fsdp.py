"""Sharded data parallelism (FSDP2) for ``Trainer(distributed="fsdp")``.

``torch.distributed.fsdp.fully_shard`` splits every parameter along its
first dimension over the ``W`` processes (a ``DTensor``): each rank keeps
``1/W`` of the parameters, of their gradients and of the optimizer state. A
block's full parameters are all-gathered just before its forward (and again
before its backward) and freed after; its gradients are reduce-scattered, so
each rank receives the mean gradient of its own shard, the mean DDP computes.

Sharding goes block by block, then the root (what FSDP2's documentation
prescribes, so that one block's all-gather overlaps the previous block's
compute):

* a stack of identical layers — a Hugging Face decoder's ``model.model.layers``,
  BERT's ``encoder.layer``, GPT-2's ``h`` — gives one block per layer;
* otherwise the layer groups of :func:`gradwise.finetune.layer_groups`
  (an ``MLP``'s ``block0``, ``block1``, ``head``) are the blocks;
* the root takes what is left (embeddings, final norm, a tied head).

Optimizers run on the shards. gradwise's elementwise transforms (SGD,
momentum, Adam(W), RMSprop, Adagrad, Lion, schedule-free, ...) see a DTensor
and work unchanged; transforms whose math needs a whole tensor or every
tensor at once are refused by :func:`check_optimizer` with the name of the
optimizer: Muon (Newton-Schulz on the full matrix), Adafactor (row and
column factors), LAMB and LARS (per-tensor trust ratios), a chain's
``clip_by_global_norm`` (use ``Trainer(clip_grad_norm=...)``, which reduces
over the shards), sparse Adam and L-BFGS (flat vectors over all parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gradwise.errors import ConfigError

MIXED_PRECISIONS = ("fp32", "bf16")

# Transform classes (gradwise.optim) whose update needs the full tensor, or all of them.
_FULL_TENSOR = {
    "ScaleByMuon": "muon (Newton-Schulz orthogonalises the whole matrix)",
    "MuonStep": "muon (Newton-Schulz orthogonalises the whole matrix)",
    "ScaleByAdafactor": "adafactor (row and column second-moment factors of the whole matrix)",
    "ScaleByLamb": "lamb (a trust ratio ||w||/||u|| per whole tensor)",
    "ScaleByLars": "lars (a trust ratio ||w||/||g|| per whole tensor)",
    "ClipByGlobalNorm": "clip_by_global_norm (a norm over every whole gradient); use "
    "Trainer(clip_grad_norm=...), which reduces over the shards",
    "ScaleBySparseAdam": "sparse_adam (sparse gradients are not sharded)",
}
_FULL_OPTIMIZERS = {"LBFGS": "lbfgs (flat vectors over all parameters, a line search)"}


@dataclass(frozen=True)
class FSDP:
    """How ``Trainer(distributed=FSDP(...))`` shards the model; ``"fsdp"`` is ``FSDP()``.

    Args:
        mixed_precision: ``"fp32"`` (parameters, compute and gradient
            reduction in float32) or ``"bf16"`` (FSDP2's
            ``MixedPrecisionPolicy(param_dtype=bfloat16, reduce_dtype=float32)``:
            the gathered parameters and the compute are bfloat16, gradients
            are reduced in float32 and the sharded master weights and
            optimizer state stay float32).
        activation_checkpointing: recompute each block's activations in the
            backward pass (``torch.utils.checkpoint``, non-reentrant) instead
            of keeping them: activation memory falls from all blocks' to about
            one block's, for one extra forward per step.
        reshard_after_forward: free the gathered parameters after each block's
            forward (ZeRO-3, least memory) or keep them until its backward
            (ZeRO-2, one all-gather fewer per block).

    Example:
        >>> FSDP(mixed_precision="bf16", activation_checkpointing=True).mixed_precision
        'bf16'
        >>> # Trainer(model, opt, loss, distributed=FSDP("bf16"))   # under torchrun
    """

    mixed_precision: str = "fp32"
    activation_checkpointing: bool = False
    reshard_after_forward: bool = True

    def __post_init__(self) -> None:
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ConfigError(
                f"FSDP: mixed_precision must be one of {', '.join(MIXED_PRECISIONS)}, "
                f"got {self.mixed_precision!r}"
            )
        for name in ("activation_checkpointing", "reshard_after_forward"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"FSDP: {name} must be true or false, got {getattr(self, name)!r}"
                )

    def policy(self) -> Any:
        """FSDP2's ``MixedPrecisionPolicy`` for this setting."""
        from torch.distributed.fsdp import MixedPrecisionPolicy

        if self.mixed_precision == "bf16":
            return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        return MixedPrecisionPolicy()


def as_fsdp(mode: Any) -> FSDP | None:
    """The FSDP setting a ``distributed`` argument asks for, or None (DDP or one process)."""
    if isinstance(mode, FSDP):
        return mode
    if mode == "fsdp":
        return FSDP()
    return None


def is_sharded(model: nn.Module) -> bool:
    """True when ``fully_shard`` has already been applied to ``model``."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def _stack(model: nn.Module) -> list[nn.Module] | None:
    from gradwise.finetune._groups import _is_stack

    for module in model.modules():
        if module is not model and _is_stack(module):
            return list(module.children())
    return None


def blocks(model: nn.Module) -> list[list[nn.Module]]:
    """The blocks ``fully_shard`` wraps one by one before the root, input to output.

    Each block is a list of modules sharded as one unit. A layer stack
    (``model.model.layers``) gives one block per layer; else each layer group
    of :func:`gradwise.finetune.layer_groups` that covers whole modules is
    one block. The root is not among them.

    Example:
        >>> from gradwise.nn import MLP
        >>> len(blocks(MLP(4, [8, 8], 2)))
        3
    """
    layers = _stack(model)
    if layers is not None:
        return [[layer] for layer in layers]
    from gradwise.finetune._groups import layer_groups

    out = []
    for group in layer_groups(model):
        mods = [m for path, m in group.modules if path and m is not model]
        if mods:
            out.append(mods)
    return out


def checkpoint_activations(module: nn.Module) -> None:
    """Recompute ``module``'s forward in the backward pass instead of storing its activations.

    ``module.forward`` is replaced on the instance by a call through
    ``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)``; the
    module's class, parameter names and state-dict keys stay as they were.
    Without gradients (evaluation) the forward runs plainly.
    """
    from torch.utils.checkpoint import checkpoint

    inner: Callable[..., Any] = module.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled():
            return inner(*args, **kwargs)
        return checkpoint(inner, *args, use_reentrant=False, **kwargs)

    module.forward = forward


def check_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Refuse an optimizer whose update needs full (unsharded) tensors, naming it."""
    why = _FULL_OPTIMIZERS.get(type(optimizer).__name__)
    if why is None:
        for leaf in getattr(optimizer, "leaves", ()):
            why = _FULL_TENSOR.get(type(leaf).__name__)
            if why is not None:
                break
    if why is not None:
        raise ConfigError(
            f"Trainer: distributed='fsdp' cannot run the optimizer {why}: under FSDP each rank "
            "holds only a shard of every parameter. Use an elementwise optimizer (sgd, adam, "
            "adamw, rmsprop, adagrad, lion, schedule_free_adamw, ...) or distributed='ddp'"
        )


def _broadcast_from_rank0(model: nn.Module) -> None:
    # fully_shard keeps each rank's own slice of its local tensors; DDP would
    # broadcast rank 0's weights first, and so do we, so ranks that built
    # their models from different seeds still train one model.
    import torch.distributed as dist

    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, src=0)


def shard(
    model: nn.Module, optimizer: torch.optim.Optimizer, cfg: FSDP, device: torch.device
) -> None:
    """Apply ``fully_shard`` per block and to the root, in place; rebind ``optimizer``.

    ``fully_shard`` replaces every parameter by a sharded ``DTensor``
    parameter of the same name; the optimizer's parameter groups are pointed
    at the new ones (the optimizer must not have stepped yet: its state would
    be unsharded). A model already sharded is left as it is.
    """
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    check_optimizer(optimizer)
    if is_sharded(model):
        return
    if optimizer.state:
        raise ConfigError(
            "Trainer: distributed='fsdp' shards the parameters at the start of fit, so the "
            "optimizer must not have stepped before; build a fresh optimizer (or pass a "
            "factory params -> Optimizer)"
        )
    names = {id(p): n for n, p in model.named_parameters()}
    _broadcast_from_rank0(model)
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    kw = {
        "mesh": mesh,
        "mp_policy": cfg.policy(),
        "reshard_after_forward": cfg.reshard_after_forward,
    }
    for block in blocks(model):
        if cfg.activation_checkpointing:
            for m in block:
                checkpoint_activations(m)
        fully_shard(block if len(block) > 1 else block[0], **kw)
    fully_shard(model, **kw)
    new = dict(model.named_parameters())
    for group in optimizer.param_groups:
        group["params"] = [new[names[id(p)]] if id(p) in names else p for p in group["params"]]


_CONFIG_MODES = {"auto": "auto", "off": False, "ddp": True, "fsdp": "fsdp"}


def trainer_mode(value: Any) -> Any:
    """A run config's ``training.distributed`` as ``Trainer(distributed=...)`` takes it.

    ``"auto"`` (DDP when torchrun started several processes), ``"off"``,
    ``"ddp"``, ``"fsdp"``, or a mapping ``{"fsdp": {"mixed_precision": "bf16",
    "activation_checkpointing": true}}`` with :class:`FSDP`'s fields.

    Example:
        >>> trainer_mode({"fsdp": {"mixed_precision": "bf16"}})
        FSDP(mixed_precision='bf16', activation_checkpointing=False, reshard_after_forward=True)
        >>> trainer_mode("off")
        False
    """
    if isinstance(value, str) and value in _CONFIG_MODES:
        return _CONFIG_MODES[value]
    if isinstance(value, dict) and list(value) == ["fsdp"]:
        opts = value["fsdp"] or {}
        fields = ("mixed_precision", "activation_checkpointing", "reshard_after_forward")
        unknown = [k for k in opts if k not in fields] if isinstance(opts, dict) else [opts]
        if unknown:
            raise ConfigError(
                f"training.distributed.fsdp: unknown option {unknown[0]!r}; "
                f"allowed: {', '.join(fields)}"
            )
        return FSDP(**opts)
    raise ConfigError(
        f"training.distributed must be one of {', '.join(_CONFIG_MODES)} or "
        f"{{fsdp: {{mixed_precision: bf16, activation_checkpointing: true}}}}, got {value!r}"
    )


def gather_into(sharded: nn.Module, plain: nn.Module) -> nn.Module:
    """Load a sharded model's full weights into ``plain`` (same architecture); returns ``plain``.

    A collective call: every rank gathers the full state dict
    (``get_model_state_dict(..., full_state_dict=True)``). A recipe uses it
    after an FSDP ``fit`` to evaluate and save an ordinary module.
    """
    plain.load_state_dict(full_state_dict(sharded))
    return plain


def full_state_dict(sharded: nn.Module) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict of an FSDP model, on every rank (a collective call)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(sharded, options=StateDictOptions(full_state_dict=True))
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
