"""The soft-threshold of many small tensors in one call, for the proximal L1 step.

A proximal step after a fused AdamW step over hundreds of small tensors pays
one torch kernel launch per tensor, about 2 us each on CPU: for 1M parameters
in 200 tensors that is half as long as the AdamW kernel itself
(benchmarks/bench_optim.py). torch has no multi-tensor soft-threshold, and
building one from its ``_foreach_*`` ops (``w - clamp(w, -t, t)``: a copy or an
allocation, two clamps and a subtraction) makes four passes over the weights,
which on CPU costs more than the launches it saves.

``ShrinkBatch`` fixes a list of tensors and their penalty factors once, then
applies ``w <- S(w, t * f)`` to all of them on every call. The small CPU
float32/float64 tensors go through one numba call (``_shrink_numba``) over
their memory, one loop per tensor, computing ``w - min(max(w, -t), t)`` in the
tensor's dtype with ``t`` rounded to it as torch rounds ``lambd``: equal to
``torch.nn.functional.softshrink`` element for element (tests/regularization
checks it). The batch is rebuilt when a tensor's storage moves
(``param.data = ...``, ``model.to(...)``). Large tensors, other dtypes and
devices, and every tensor when numba (the ``fast`` extra) is not installed go
through torch's kernel, one call each.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

# Below this many elements a tensor joins the numba batch: the launch it saves
# (about 2 us) is then a large share of its soft-threshold. Larger tensors keep
# torch's kernel, which runs on all of torch's threads.
SMALL_NUMEL = 32768
# With fewer small tensors than this the batch saves less than it costs.
MIN_BATCH = 4

_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def softshrink_(x: Tensor, t: float) -> Tensor:
    """``x <- S(x, t) = sign(x) max(|x| - t, 0)`` in place, in one pass over ``x``.

    ``torch.nn.functional.softshrink`` with ``out=x``: one read and one write
    per element, a third of the traffic of ``x.copy_(F.softshrink(x, t))`` or
    ``x.sub_(x.clamp(-t, t))``. tests/regularization checks that it still
    takes ``out=`` and equals the out-of-place call.
    """
    return _SOFTSHRINK(x, t, out=x)


_SOFTSHRINK: Any = torch.nn.functional.softshrink


def has_numba() -> bool:
    """Whether numba is installed (the ``fast`` extra)."""
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # a broken or blocked installation
        return False


_use_numba = [has_numba()]  # tests switch it off to run the torch path


@functools.cache
def _kernel() -> Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None:
    # Imported on first use: numba's import alone takes about a second. A
    # numba that is installed but does not import (a NumPy it does not
    # support) leaves every tensor on torch's kernel instead of failing a step.
    try:
        from gradwise.regularization._shrink_numba import shrink
    except ImportError:
        return None
    return shrink


class _Batch:
    """Tensors of one dtype, their addresses and sizes, for one numba call."""

    def __init__(self, tensors: list[Tensor], factors: list[float], np_dtype: type) -> None:
        self.tensors = tensors
        # Aliases of the memory the addresses point to: it stays allocated while
        # the batch lives, so no other tensor can be given the same address.
        self.keep = [x.detach() for x in tensors]
        self.ptrs = [x.data_ptr() for x in tensors]
        self.addresses = np.asarray(self.ptrs, dtype=np.intp)
        self.sizes = np.asarray([x.numel() for x in tensors], dtype=np.intp)
        shared = all(f == factors[0] for f in factors)
        self.shared = factors[0] if shared else None
        self.factors = np.asarray(factors, dtype=np.float64)
        self.scaled = np.empty(len(tensors), dtype=np.float64)
        self.thresholds: np.ndarray = np.empty(len(tensors), dtype=np_dtype)

    def moved(self) -> bool:
        return list(map(Tensor.data_ptr, self.tensors)) != self.ptrs

    def __call__(self, l1: float) -> None:
        # t = l1 * f in double, as the per-tensor path computes it, then rounded
        # to the tensor's dtype, as torch rounds softshrink's lambd.
        if self.shared is not None:
            self.thresholds.fill(l1 * self.shared)
        else:
            np.multiply(self.factors, l1, out=self.scaled)
            self.thresholds[:] = self.scaled
        _kernel()(self.addresses, self.sizes, self.thresholds)  # type: ignore[misc]


class ShrinkBatch:
    """``w <- S(w, l1 * f)`` for fixed tensors ``w`` and float factors ``f``, in place.

    Args:
        tensors: the tensors to threshold (parameters), any shapes.
        factors: one penalty factor ``f >= 0`` per tensor.

    Calling it with ``l1`` (the step times the L1 strength) thresholds every
    tensor by ``l1 * f``, as ``torch.nn.functional.softshrink`` would, with
    the small CPU float tensors in one numba call (see the module docstring).

    Example:
        >>> import torch
        >>> ws = [torch.tensor([0.3, -2.0]), torch.tensor([1.0])]
        >>> ShrinkBatch(ws, [1.0, 2.0])(0.5); ws
        [tensor([ 0.0000, -1.5000]), tensor([0.])]
    """

    def __init__(self, tensors: Sequence[Tensor], factors: Sequence[float]) -> None:
        self._tensors, self._factors = list(tensors), [float(f) for f in factors]
        self._build()

    def _build(self) -> None:
        picked: dict[torch.dtype, tuple[list[Tensor], list[float]]] = {}
        rest = []
        for x, f in zip(self._tensors, self._factors):
            if (
                _use_numba[0]
                and x.dtype in _NP_DTYPES
                and x.is_cpu
                and type(x) in (Tensor, torch.nn.Parameter)
                and x.numel() < SMALL_NUMEL
                and x.is_contiguous()
                and not x.is_conj()
                and not x.is_neg()
            ):
                xs, fs = picked.setdefault(x.dtype, ([], []))
                xs.append(x)
                fs.append(f)
            else:
                rest.append((x, f))
        self._batches = []
        for dtype, (xs, fs) in picked.items():
            if len(xs) >= MIN_BATCH and _kernel() is not None:
                self._batches.append(_Batch(xs, fs, _NP_DTYPES[dtype]))
            else:
                rest.extend(zip(xs, fs))
        self._rest = rest

    def __call__(self, l1: float) -> None:
        """Threshold every tensor by ``l1 * f``, in place."""
        if any(b.moved() for b in self._batches):
            self._build()
        for b in self._batches:
            b(l1)
        for x, f in self._rest:
            _SOFTSHRINK(x, l1 * f, out=x)
