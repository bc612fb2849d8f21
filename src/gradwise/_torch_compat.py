"""The one place gradwise touches a private attribute of torch's LR schedulers.

torch's ``LRScheduler`` reports the rates of its last step through the public
``get_last_lr()``, but has no public way to set them. Restarting a schedule
(gradual unfreezing) and scaling every rate after a divergence rescue must
change what it reports, so both go through :func:`set_last_lr`, and a test
(``tests/test_torch_compat.py``) fails with torch's version if the attribute
behind ``get_last_lr()`` moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

_LAST_LR = "_last_lr"  # what LRScheduler.get_last_lr() returns (torch 2.x)


def set_last_lr(scheduler: Any, lrs: Sequence[Any]) -> None:
    """Make ``scheduler.get_last_lr()`` report ``lrs`` (one rate per param group).

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)
        >>> set_last_lr(sched, [0.05]); sched.get_last_lr()
        [0.05]
    """
    if not hasattr(scheduler, _LAST_LR):
        raise RuntimeError(
            f"{type(scheduler).__name__} (torch {torch.__version__}) keeps no {_LAST_LR!r} "
            "behind get_last_lr(); gradwise._torch_compat.set_last_lr must follow torch"
        )
    setattr(scheduler, _LAST_LR, list(lrs))
