"""LoRA wrappers: each holds the frozen ``base_layer`` and named low-rank factors.

A wrapper never subclasses the layer it adapts: it calls ``base_layer`` and adds
``s·B·(A·x)``. Attribute names follow PEFT (``base_layer``, ``lora_A.<name>.weight``,
``lora_B.<name>.weight``, ``lora_embedding_A.<name>``) so that in-memory state
dicts read the same as PEFT's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as _torch_module

from gradwise.errors import CheckpointError


class _Factor(nn.Module):
    """A bare weight holder, so state-dict keys read ``lora_A.<name>.weight`` as in PEFT."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.weight.shape)}"


class LoRALayer(nn.Module):
    """Base of every wrapper: adapter bookkeeping, merge/unmerge and the forward switch.

    Subclasses define ``add_adapter``, ``delta_weight`` (the update in the base
    weight's layout), ``_lora`` (the unmerged adapter path) and the file layout
    (``file_tensors`` / ``load_file_tensors``).

    State: ``active_adapter`` (the adapter the forward adds, or None),
    ``merged_adapter`` (the adapter currently folded into the base weight) and
    ``adapters_disabled``. The forward adds the adapter only when it is active,
    present on this layer, not merged and not disabled.
    """

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer: Any = base_layer  # any torch layer: its attributes are the layer's own
        self.r: dict[str, int] = {}
        self.lora_alpha: dict[str, float] = {}
        self.scaling: dict[str, float] = {}
        self.lora_dropout: dict[str, float] = {}
        self.active_adapter: str | None = None
        self.merged_adapter: str | None = None
        self.adapters_disabled = False
        self._on = False

    # -- attribute fallback: code that reads `layer.weight`, `layer.in_features`, ... ---

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            # via __dict__, so that a half-built instance (unpickling) cannot recurse
            base = self.__dict__.get("_modules", {}).get("base_layer")
            if base is None or name == "base_layer":
                raise
            return getattr(base, name)

    # -- bookkeeping ------------------------------------------------------------------

    @property
    def adapters(self) -> list[str]:
        """Names of the adapters this layer holds."""
        return list(self.r)

    def _register(self, name: str, r: int, alpha: float, dropout: float, use_rslora: bool) -> None:
        self.r[name] = r
        self.lora_alpha[name] = alpha
        self.scaling[name] = alpha / (math.sqrt(r) if use_rslora else r)
        self.lora_dropout[name] = dropout

    def _refresh(self) -> None:
        # One flag read per forward instead of four checks.
        name = self.active_adapter
        self._on = (
            name is not None
            and name in self.r
            and self.merged_adapter is None
            and not self.adapters_disabled
        )

    def set_active(self, name: str | None) -> None:
        """Make ``name`` the adapter the forward adds (None: none)."""
        self.active_adapter = name
        self._refresh()

    def set_disabled(self, disabled: bool) -> None:
        self.adapters_disabled = disabled
        self._refresh()

    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        """The trainable factors of adapter ``name`` on this layer."""
        return [p for key, p in self.named_parameters() if _belongs(key, name)]

    def adapter_numel(self, name: str) -> int:
        return sum(p.numel() for p in self.adapter_parameters(name))

    def delete_adapter(self, name: str) -> None:
        if self.merged_adapter == name:
            self.unmerge()
        for container in self.children():
            if isinstance(container, (nn.ModuleDict, nn.ParameterDict)) and name in container:
                del container[name]
        for table in (self.r, self.lora_alpha, self.scaling, self.lora_dropout):
            table.pop(name, None)
        if self.active_adapter == name:
            self.active_adapter = None
        self._refresh()

    # -- merging ----------------------------------------------------------------------

    def delta_weight(self, name: str) -> torch.Tensor:
        """``s·B·A`` for adapter ``name`` in the layout of ``base_layer.weight``."""
        raise NotImplementedError

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the active adapter into the base weight: ``W ← W + s·B·A``."""
        name = self.active_adapter
        if self.merged_adapter is not None or name is None or name not in self.r:
            return
        weight = self.base_layer.weight
        weight.add_(self.delta_weight(name).to(weight.dtype))
        self.merged_adapter = name
        self._refresh()

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the merged adapter back out: ``W ← W − s·B·A``."""
        name = self.merged_adapter
        if name is None:
            return
        weight = self.base_layer.weight
        weight.sub_(self.delta_weight(name).to(weight.dtype))
        self.merged_adapter = None
        self._refresh()

    # -- forward ----------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # When the adapter adds nothing (merged, disabled, none active) the wrapper is a
        # pass-through: calling the base layer directly skips a second trip through
        # Module.__call__, so a merged model runs as fast as the base model. Hooks on
        # the wrapper still get the full call.
        if self._on or _hooked(self):
            return super().__call__(*args, **kwargs)
        return self._modules["base_layer"](*args, **kwargs)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        # _modules[...] skips two Python-level attribute hops: this runs once per layer per step.
        out = self._modules["base_layer"](x, *args, **kwargs)
        if not self._on:
            return out
        return self._lora(x, out, self.active_adapter)

    def _lora(self, x: torch.Tensor, out: torch.Tensor, name: str) -> torch.Tensor:
        raise NotImplementedError

    # -- file layout (PEFT's) ---------------------------------------------------------

    def file_tensors(self, name: str) -> dict[str, torch.Tensor]:
        """Adapter ``name``'s tensors keyed by PEFT's suffix (``lora_A.weight`` ...)."""
        raise NotImplementedError

    def load_file_tensors(self, name: str, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        """Copy tensors in PEFT's layout into adapter ``name``; ``prefix`` names keys in errors."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        ranks = ", ".join(f"{n}: r={r}" for n, r in self.r.items())
        state = f", merged={self.merged_adapter!r}" if self.merged_adapter else ""
        return f"adapters={{{ranks}}}, active={self.active_adapter!r}{state}"


# torch has no public way to ask whether global module hooks
# (``torch.nn.modules.module.register_module_forward_hook`` and friends) are
# registered; it keeps them in module-level dicts that it mutates in place. This
# is the one place that reads them; tests/lora/test_lora_torch_hooks.py fails,
# naming the attribute, when a torch release moves them.
GLOBAL_HOOK_DICTS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)
_GLOBAL_HOOKS = tuple(getattr(_torch_module, name, {}) for name in GLOBAL_HOOK_DICTS)


def global_hooks_registered() -> bool:
    """True when any global module hook is registered (then no call may skip ``Module.__call__``)."""
    return any(_GLOBAL_HOOKS)


def _hooked(module: nn.Module) -> bool:
    return bool(
        module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
        or module._backward_pre_hooks or global_hooks_registered()
    )


def _belongs(param_key: str, name: str) -> bool:
    # keys look like "lora_A.<name>.weight" or "lora_embedding_A.<name>"
    parts = param_key.split(".")
    return parts[0].startswith("lora_") and len(parts) > 1 and parts[1] == name


def _copy_checked(dst: torch.Tensor, src: torch.Tensor, key: str, r: int) -> None:
    if tuple(src.shape) != tuple(dst.shape):
        raise CheckpointError(
            f"{key}: shape {tuple(src.shape)} in the file but {tuple(dst.shape)} in the model "
            f"(adapter rank r={r}); the adapter was trained with another rank or model"
        )
    with torch.no_grad():
        dst.copy_(src)


def _init_a(a: torch.Tensor, init: str, r: int) -> None:
    if init == "gaussian":
        nn.init.normal_(a, std=1.0 / r)
    else:
        # nn.Linear's own default, so A starts as a freshly built r×in layer would.
        nn.init.kaiming_uniform_(a, a=math.sqrt(5))


class LoRALinear(LoRALayer):
    """LoRA on ``nn.Linear`` or Hugging Face's ``Conv1D`` (``fan_in_fan_out=True``).

    ``y = base(x) + s·(dropout(x)·Aᵀ)·Bᵀ`` with ``A: (r, in)``, ``B: (out, r)``.
    Conv1D stores its weight as ``(in, out)``, so its merged delta is transposed.

    >>> layer = LoRALinear(nn.Linear(4, 3))
    >>> layer.add_adapter("default", r=2, alpha=4)
    >>> layer.lora_A["default"].weight.shape, layer.lora_B["default"].weight.shape
    (torch.Size([2, 4]), torch.Size([3, 2]))
    """

    def __init__(self, base_layer: nn.Module, fan_in_fan_out: bool = False) -> None:
        super().__init__(base_layer)
        self.fan_in_fan_out = fan_in_fan_out
        rows, cols = base_layer.weight.shape
        self.in_features, self.out_features = (rows, cols) if fan_in_fan_out else (cols, rows)
        self.lora_A = nn.ModuleDict()
        self.lora_B = nn.ModuleDict()

    def add_adapter(
        self,
        name: str,
        r: int,
        alpha: float,
        *,
        dropout: float = 0.0,
        use_rslora: bool = False,
        init: str = "kaiming",
    ) -> None:
        w = self.base_layer.weight
        a = torch.empty(r, self.in_features, dtype=w.dtype, device=w.device)
        _init_a(a, init, r)
        self.lora_A[name] = _Factor(a)
        self.lora_B[name] = _Factor(torch.zeros(self.out_features, r, dtype=w.dtype, device=w.device))
        self._register(name, r, alpha, dropout, use_rslora)
        self._refresh()

    def delta_weight(self, name: str) -> torch.Tensor:
        delta = (self.lora_B[name].weight @ self.lora_A[name].weight) * self.scaling[name]
        return delta.T if self.fan_in_fan_out else delta

    def _lora(self, x: torch.Tensor, out: torch.Tensor, name: str) -> torch.Tensor:
        a = self.lora_A[name].weight
        b = self.lora_B[name].weight
        p = self.lora_dropout[name]
        if p:
            x = F.dropout(x, p, self.training)
        # Scale the narrow (..., r) activation, not the wide output, and let addmm fold
        # the residual add into the GEMM: 3 kernels forward (PEFT: 4), no extra backward mul.
        h = F.linear(x, a) * self.scaling[name]  # (..., r)
        out2 = torch.addmm(out.reshape(-1, self.out_features), h.reshape(-1, h.shape[-1]), b.t())
        return out2.view(out.shape)

    def file_tensors(self, name: str) -> dict[str, torch.Tensor]:
        return {"lora_A.weight": self.lora_A[name].weight, "lora_B.weight": self.lora_B[name].weight}

    def load_file_tensors(self, name: str, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        r = self.r[name]
        _copy_checked(self.lora_A[name].weight, tensors["lora_A.weight"], prefix + "lora_A.weight", r)
        _copy_checked(self.lora_B[name].weight, tensors["lora_B.weight"], prefix + "lora_B.weight", r)


class LoRAEmbedding(LoRALayer):
    """LoRA on ``nn.Embedding``: ``y = base(i) + s·Aᵀ[i]·Bᵀ``.

    ``A: (r, num_embeddings)`` starts at zero and ``B: (embedding_dim, r)`` at
    N(0, 1), as in PEFT and the LoRA paper's code (a lookup of a zero A is zero).
    Dropout is not applied: the input is token indices.
    """

    def __init__(self, base_layer: nn.Embedding) -> None:
        super().__init__(base_layer)
        self.lora_embedding_A = nn.ParameterDict()
        self.lora_embedding_B = nn.ParameterDict()

    def add_adapter(
        self,
        name: str,
        r: int,
        alpha: float,
        *,
        dropout: float = 0.0,
        use_rslora: bool = False,
        init: str = "kaiming",
    ) -> None:
        w = self.base_layer.weight
        num, dim = w.shape
        self.lora_embedding_A[name] = nn.Parameter(torch.zeros(r, num, dtype=w.dtype, device=w.device))
        self.lora_embedding_B[name] = nn.Parameter(torch.randn(dim, r, dtype=w.dtype, device=w.device))
        self._register(name, r, alpha, dropout, use_rslora)
        self._refresh()

    def delta_weight(self, name: str) -> torch.Tensor:
        return (self.lora_embedding_B[name] @ self.lora_embedding_A[name]).T * self.scaling[name]

    def _lora(self, x: torch.Tensor, out: torch.Tensor, name: str) -> torch.Tensor:
        base = self.base_layer
        a = self.lora_embedding_A[name]
        b = self.lora_embedding_B[name]
        # max_norm is left out on purpose: it would renormalise A in place.
        h = F.embedding(x, a.T, padding_idx=base.padding_idx, scale_grad_by_freq=base.scale_grad_by_freq)
        h = h * self.scaling[name]  # (..., r)
        out2 = torch.addmm(out.reshape(-1, out.shape[-1]), h.reshape(-1, h.shape[-1]), b.t())
        return out2.view(out.shape)

    def file_tensors(self, name: str) -> dict[str, torch.Tensor]:
        return {
            "lora_embedding_A": self.lora_embedding_A[name],
            "lora_embedding_B": self.lora_embedding_B[name],
        }

    def load_file_tensors(self, name: str, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        r = self.r[name]
        for key in ("lora_embedding_A", "lora_embedding_B"):
            dst = getattr(self, key)[name]
            _copy_checked(dst, tensors[key], prefix + key, r)
