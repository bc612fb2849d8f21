"""The numba kernel of ``ShrinkBatch``: soft-threshold many tensors, given their addresses.

Imported only where numba is installed, on first use (see ``_shrink``).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic


@intrinsic
def _pointer_like(typingctx: Any, address: Any, like: Any) -> Any:
    # The integer address as a pointer to the element type of the array `like`.
    ptr = types.CPointer(like.dtype)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(ptr))

    return ptr(types.intp, like), codegen


@numba.njit(cache=True, nogil=True)
def shrink(addresses: np.ndarray, sizes: np.ndarray, thresholds: np.ndarray) -> None:
    """``x <- S(x, thresholds[k])`` for the ``sizes[k]`` elements at ``addresses[k]``, for every k.

    The elements are of ``thresholds``' dtype. Arrays of addresses, not a
    numba typed List of arrays: that List takes seconds to compile on first
    use, this kernel milliseconds to load from numba's cache. The caller
    keeps the memory alive. ``w - clamp(w, -t, t)`` is ``S(w, t)`` exactly:
    ``w - t`` above ``t``, ``w + t`` below ``-t``, 0 between, NaN and inf kept.
    """
    for k in range(addresses.shape[0]):
        x = numba.carray(_pointer_like(addresses[k], thresholds), (sizes[k],))
        t = thresholds[k]
        lo = -t
        for i in range(x.shape[0]):
            a = x[i]
            x[i] = a - min(max(a, lo), t)
