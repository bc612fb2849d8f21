"""The private torch attribute gradwise relies on: fails loudly, naming it, if torch moves it."""

import pytest
import torch

from gradwise._torch_compat import _LAST_LR, set_last_lr


def _scheduler():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5)


def test_get_last_lr_still_reads_the_attribute_set_last_lr_writes():
    sched = _scheduler()
    assert hasattr(sched, _LAST_LR), f"torch {torch.__version__} moved LRScheduler.{_LAST_LR}"
    set_last_lr(sched, [0.0123])
    assert sched.get_last_lr() == [0.0123]


def test_a_scheduler_without_it_is_a_clear_error():
    class Plain:
        pass

    with pytest.raises(RuntimeError, match="_last_lr"):
        set_last_lr(Plain(), [0.1])
