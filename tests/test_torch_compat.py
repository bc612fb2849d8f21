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


def test_the_guards_gradient_check_kernel_is_there_and_leaves_gradients_alone():
    # gradwise.train._guard_checks.GradCheck runs this private kernel (the one
    # behind torch.amp.GradScaler) with a scale of exactly 1; without it the
    # guard falls back to a slower norm, so its going must be seen here.
    kernel = getattr(torch, "_amp_foreach_non_finite_check_and_unscale_", None)
    assert callable(kernel), (
        f"torch {torch.__version__} has no _amp_foreach_non_finite_check_and_unscale_: "
        "DivergenceGuard's gradient check falls back to torch.nn.utils.get_total_norm"
    )
    from gradwise.train._guard_checks import GradCheck

    grads = [torch.tensor([1.0, -2.0]), torch.tensor([3.0])]
    check = GradCheck([torch.zeros(1)])
    assert check.kernel is kernel
    assert check.finite(grads)
    grads[1][0] = float("nan")
    assert not check.finite(grads)
    assert torch.equal(grads[0], torch.tensor([1.0, -2.0]))  # scale 1: unchanged
    grads[1][0] = 3.0
    assert check.finite(grads)  # the flag was cleared after the find
