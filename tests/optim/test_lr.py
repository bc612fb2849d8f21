"""The lr's one home (the param groups) and the one function that scales it everywhere."""

import pytest
import torch

from gradwise import optim as go
from gradwise.errors import ConfigError
from gradwise.optim import scale_lr, set_lr
from gradwise.schedules import attach, cosine


def _sgd(lr=0.1):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


def test_scale_lr_scales_torch_schedulers_base_rates():
    def make():
        opt = _sgd()
        return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=20)

    ref_opt, ref = make()
    opt, sched = make()
    for _ in range(5):
        ref_opt.step(), ref.step(), opt.step(), sched.step()
    scale_lr(opt, 0.1, sched)
    for _ in range(10):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * ref_opt.param_groups[0]["lr"])
        ref_opt.step(), ref.step(), opt.step(), sched.step()


def test_scale_lr_scales_a_shared_tensor_lr_once():
    lr = torch.tensor(0.2)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)

    class Holder:  # a scheduler whose lists share the group's tensor
        base_lrs = [lr]
        _last_lr = [lr]

        def get_last_lr(self):
            return self._last_lr

    scale_lr(opt, 0.5, Holder())
    assert opt.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.1)


def test_scale_lr_on_an_attached_schedule_equals_a_run_started_at_the_scaled_lr():
    # every place agrees after the cut: group lr, initial_lr, base_lrs, get_last_lr,
    # and the schedule continues as if the run had started at 0.25 * lr
    opt = _sgd(0.4)
    sched = attach(opt, cosine(total_steps=10))
    ref_opt = _sgd(0.1)
    ref = attach(ref_opt, cosine(total_steps=10))
    for _ in range(3):
        opt.step(), sched.step(), ref_opt.step(), ref.step()
    scale_lr(opt, 0.25, sched)
    group = opt.param_groups[0]
    assert group["initial_lr"] == sched.base_lrs[0] == 0.1
    assert group["lr"] == sched.get_last_lr()[0] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-15)
    for _ in range(5):
        opt.step(), sched.step(), ref_opt.step(), ref.step()
        assert group["lr"] == ref_opt.param_groups[0]["lr"]


@pytest.mark.parametrize("factor", [-1.0, float("nan"), float("inf"), True, "0.5"])
def test_scale_lr_rejects_a_bad_factor(factor):
    with pytest.raises(ValueError, match="factor"):
        scale_lr(_sgd(), factor)


def test_set_lr_writes_each_group_and_fills_a_tensor_lr_in_place():
    a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    lr = torch.tensor(0.1)
    opt = torch.optim.Adam([{"params": [a], "lr": lr}, {"params": [b], "lr": 0.2}])
    set_lr(opt, [0.3, 0.4])
    assert opt.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.3)
    assert opt.param_groups[1]["lr"] == 0.4
    set_lr(opt, 0.5)
    assert [float(g["lr"]) for g in opt.param_groups] == [0.5, 0.5]
    with pytest.raises(ValueError, match="3 rates for 2 param groups"):
        set_lr(opt, [0.1, 0.2, 0.3])


def test_attach_takes_the_groups_current_lr_as_base_even_after_another_scheduler():
    # torch keeps an initial_lr an earlier scheduler left; attach must not (lr has one home)
    opt = _sgd(0.1)
    torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    set_lr(opt, 0.03)
    sched = attach(opt, cosine(total_steps=4))
    assert sched.base_lrs == [0.03] and opt.param_groups[0]["initial_lr"] == 0.03


def test_scale_by_lr_reads_the_group_lr_at_step_time_and_has_no_fallback():
    w = torch.nn.Parameter(torch.ones(3))
    opt = go.Optimizer([w], go.chain(go.scale_by_lr(0.5)), fused=False)
    assert opt.param_groups[0]["lr"] == 0.5  # the transform's lr only seeds the group
    set_lr(opt, 0.25)
    w.grad = torch.ones(3)
    opt.step()
    assert torch.equal(w.detach(), torch.full((3,), 0.75))
    t = go.scale_by_lr(0.5)
    with pytest.raises(ConfigError, match="reads lr from the param group"):
        t.update(torch.ones(3), t.init(w), w, {})
    # a chain run by hand fills the group's options from its transforms, as Optimizer does
    (u, _) = go.chain(t).update(torch.ones(3), go.chain(t).init(w), w, {})
    assert torch.equal(u, torch.full((3,), -0.5))
