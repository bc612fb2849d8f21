"""SparseAdam: Adam on the rows a sparse gradient touches (``nn.Embedding(sparse=True)``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from gradwise.optim import _validate as check
from gradwise.optim._base import Group, Transform
from gradwise.regularization import Mask, check_mask


class SparseAdamState(NamedTuple):
    """SparseAdam's state under torch's keys; ``step`` is a Python int, as torch keeps it."""

    step: int
    exp_avg: Tensor
    exp_avg_sq: Tensor


@dataclass(frozen=True, repr=False)
class ScaleBySparseAdam(Transform):
    """Masked Adam on a sparse gradient; see ``scale_by_sparse_adam``."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    mask: Mask = None
    State = SparseAdamState
    hyper = ("betas", "eps")
    sparse = True

    def init(self, param: Tensor) -> SparseAdamState:
        z = torch.zeros_like(param, memory_format=torch.preserve_format)
        return SparseAdamState(0, z, torch.zeros_like(z))

    def update(self, u: Tensor, state: SparseAdamState, param: Tensor, group: Group) -> tuple[Tensor, SparseAdamState]:
        if not u.is_sparse:
            raise RuntimeError("sparse_adam needs sparse gradients (nn.Embedding(sparse=True)); "
                               "use adam for dense ones")
        b1, b2 = self.option(group, "betas")
        step, m, v = state
        state = SparseAdamState(step + 1, m, v)
        g = u.coalesce()  # the update is non-linear, so indices must be unique
        idx, vals = g.indices(), g.values()
        if vals.numel() == 0:
            return g, state

        def sparse(values: Tensor) -> Tensor:
            return torch.sparse_coo_tensor(idx, values, g.size(), check_invariants=False, is_coalesced=True)

        m_old = m.sparse_mask(g).values()
        m_upd = vals.sub(m_old).mul_(1 - b1)
        m.add_(sparse(m_upd))
        v_old = v.sparse_mask(g).values()
        v_upd = vals.pow(2).sub_(v_old).mul_(1 - b2)
        v.add_(sparse(v_upd))
        numer = m_upd.add_(m_old)
        denom = v_upd.add_(v_old).sqrt_().add_(self.option(group, "eps"))
        t = state.step
        scale = math.sqrt(1 - b2**t) / (1 - b1**t)
        return sparse(numer.div_(denom).mul_(scale)), state


def scale_by_sparse_adam(
    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, *, mask: Mask = None
) -> ScaleBySparseAdam:
    """Adam restricted to a sparse gradient's entries, as ``torch.optim.SparseAdam``.

    Only the coordinates present in the sparse gradient update ``m``, ``v``
    and the weight: ``u <- sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)`` there,
    with ``t`` the number of steps this parameter took. Returns a sparse
    tensor. Group options: ``betas``, ``eps``.

    Example:
        >>> t = scale_by_sparse_adam()
    """
    owner = "sparse_adam"
    return ScaleBySparseAdam(check.betas(owner, betas), check.number(owner, "eps", eps), check_mask(mask))
