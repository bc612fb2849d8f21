"""LoRA on convolutions (``nn.Conv1d/2d/3d``), grouped and depthwise included."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gradwise.errors import CheckpointError
from gradwise.lora._layers import LoRALayer, _copy_checked, _Factor, _init_a

_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class LoRAConv(LoRALayer):
    """LoRA on ``nn.Conv1d/2d/3d``, including grouped and depthwise convolutions.

    ``A`` is a convolution with the base layer's kernel, stride, padding,
    dilation, padding mode and groups, mapping ``in → r`` channels; ``B`` is a
    grouped 1×1 convolution ``r → out``. With ``G`` groups each group gets a rank
    ``r/G`` update of its own block, so the update has the base weight's grouped
    shape and merges exactly:

        ``ΔW[g] = s · B[g] (out/G × r/G) · A[g] (r/G × in/G·k)``

    Shapes: ``A: (r, in/G, *k)``, ``B: (out, r/G, 1, ...)``; ``r`` must be a
    multiple of ``G``. In PEFT's file layout A has ``in`` input channels; a grouped
    A is written with zeros outside its group's block, which PEFT's (non-grouped)
    A convolution reproduces exactly.
    """

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__(base_layer)
        self._dim = base_layer.weight.dim() - 2
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
        base = self.base_layer
        w = base.weight
        g = base.groups
        if r % g:
            raise ValueError(f"r={r} is not a multiple of groups={g}")
        a = torch.empty(r, w.shape[1], *w.shape[2:], dtype=w.dtype, device=w.device)
        _init_a(a, init, r)
        ones = (1,) * self._dim
        self.lora_A[name] = _Factor(a)
        self.lora_B[name] = _Factor(torch.zeros(w.shape[0], r // g, *ones, dtype=w.dtype, device=w.device))
        self._register(name, r, alpha, dropout, use_rslora)
        self._refresh()

    def delta_weight(self, name: str) -> torch.Tensor:
        a = self.lora_A[name].weight  # (r, in/G, *k)
        b = self.lora_B[name].weight  # (out, r/G, 1...)
        g = self.base_layer.groups
        r = a.shape[0]
        out = b.shape[0]
        a3 = a.reshape(g, r // g, -1)  # (G, r/G, in/G·k)
        b3 = b.reshape(g, out // g, r // g)  # (G, out/G, r/G)
        delta = torch.bmm(b3, a3)  # (G, out/G, in/G·k)
        return delta.reshape(self.base_layer.weight.shape) * self.scaling[name]

    def _lora(self, x: torch.Tensor, out: torch.Tensor, name: str) -> torch.Tensor:
        base = self.base_layer
        p = self.lora_dropout[name]
        if p:
            x = F.dropout(x, p, self.training)
        # _conv_forward applies the base layer's padding mode, stride, padding,
        # dilation and groups, which is what makes the merged weight exact.
        h = base._conv_forward(x, self.lora_A[name].weight, None) * self.scaling[name]  # r channels
        return out + _CONV_FN[self._dim](h, self.lora_B[name].weight, groups=base.groups)

    def file_tensors(self, name: str) -> dict[str, torch.Tensor]:
        a = self.lora_A[name].weight
        g = self.base_layer.groups
        if g > 1:
            # Block-diagonal expansion to PEFT's (r, in, *k): r-channel j reads only its group.
            r, cin = a.shape[0], a.shape[1]
            full = a.new_zeros(r, cin * g, *a.shape[2:])
            for i in range(g):
                full[i * r // g : (i + 1) * r // g, i * cin : (i + 1) * cin] = a[i * r // g : (i + 1) * r // g]
            a = full
        return {"lora_A.weight": a, "lora_B.weight": self.lora_B[name].weight}

    def load_file_tensors(self, name: str, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        r = self.r[name]
        g = self.base_layer.groups
        a = tensors["lora_A.weight"]
        dst = self.lora_A[name].weight
        grouped_shape = (dst.shape[0], dst.shape[1] * g, *dst.shape[2:])
        if g > 1 and tuple(a.shape) == grouped_shape:
            # (r, G·in/G, *k) -> (G_r, G_in, r/G, in/G, *k); keep the diagonal blocks.
            blocks = a.reshape(g, r // g, g, dst.shape[1], *a.shape[2:]).transpose(1, 2)
            eye = torch.eye(g, dtype=torch.bool, device=a.device)
            if blocks[~eye].any():
                raise CheckpointError(
                    f"{prefix}lora_A.weight: this grouped convolution's A mixes channels across its "
                    f"{g} groups (non-zero entries outside the group blocks). gradwise keeps grouped "
                    "adapters block-diagonal so that they merge exactly; PEFT's unmergeable grouped "
                    "adapters cannot be loaded"
                )
            a = blocks[eye].reshape(dst.shape)
        _copy_checked(dst, a, prefix + "lora_A.weight", r)
        _copy_checked(self.lora_B[name].weight, tensors["lora_B.weight"], prefix + "lora_B.weight", r)
