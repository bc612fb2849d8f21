"""The private torch attributes gradwise relies on: fails loudly, naming them, if torch moves them."""

import pytest
import torch
from torch import nn

from gradwise._torch_compat import (
    _LAST_LR,
    module_saves_plainly,
    module_state_dicts,
    optimizer_state_dict_hooked,
    set_last_lr,
)
from gradwise._torch_compat import (
    module_state_dict_hooked as hooked,
)


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


# -- what DivergenceGuard's layout asks (gradwise.train._guard_layout) --------------------


def _module_hooks(calls):
    """Each public way to hook a module's state_dict/load_state_dict, recording its calls."""

    def pre(*args, **kwargs):
        calls.append("pre")

    def post(module, sd, prefix, local_metadata):
        calls.append("post")

    def old_post(module, sd, prefix, local_metadata):  # torch refuses one function for both
        calls.append("post")

    def load_pre(module, sd, *args, **kwargs):
        calls.append("load_pre")

    def load_post(module, keys):
        calls.append("load_post")

    return {
        "register_state_dict_pre_hook": pre,
        "register_state_dict_post_hook": post,
        "_register_state_dict_hook": old_post,  # the older spelling, still in use
        "register_load_state_dict_pre_hook": load_pre,
        "register_load_state_dict_post_hook": load_post,
    }


@pytest.mark.parametrize(
    "register",
    [
        "register_state_dict_pre_hook",
        "register_state_dict_post_hook",
        "_register_state_dict_hook",
        "register_load_state_dict_pre_hook",
        "register_load_state_dict_post_hook",
    ],
)
def test_a_module_hook_registered_through_torch_is_reported_and_is_the_one_torch_runs(register):
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    assert not any(map(hooked, model.modules()))
    calls = []
    handle = getattr(model[0], register)(_module_hooks(calls)[register])
    assert hooked(model[0]), f"torch {torch.__version__}: {register} not seen"
    assert not hooked(model) and not hooked(model[1])  # its own hooks only
    model.load_state_dict(model.state_dict())
    assert len(calls) == 1  # the hook reported is the one torch runs
    handle.remove()
    assert not hooked(model[0])
    model.load_state_dict(model.state_dict())
    assert len(calls) == 1


def test_a_module_is_hooked_until_its_last_hook_of_any_kind_goes():
    m = nn.Linear(2, 1)
    handles = [getattr(m, register)(hook) for register, hook in _module_hooks([]).items()]
    for handle in handles:
        assert hooked(m)
        handle.remove()
    assert not hooked(m)


@pytest.mark.parametrize(
    "register",
    [
        "register_state_dict_pre_hook",
        "register_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_load_state_dict_post_hook",
    ],
)
def test_an_optimizer_hook_registered_through_torch_is_reported(register):
    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    p.grad = torch.ones(2)
    opt.step()
    assert not optimizer_state_dict_hooked(opt)
    calls = []

    def hook(*args):
        calls.append(1)
        return args[-1] if "post" in register and "load" not in register else None

    handle = getattr(opt, register)(hook)
    assert optimizer_state_dict_hooked(opt), f"torch {torch.__version__}: {register} not seen"
    opt.load_state_dict(opt.state_dict())
    assert calls == [1]
    handle.remove()
    assert not optimizer_state_dict_hooked(opt)


def test_a_moved_hook_dict_is_an_error_not_no_hooks():
    # the guard must not read a renamed attribute as "no hooks" (it would bypass them)
    m = nn.Linear(2, 1)
    del m._state_dict_pre_hooks
    with pytest.raises(RuntimeError, match="state-dict hook"):
        hooked(m)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    del opt._optimizer_load_state_dict_post_hooks
    with pytest.raises(RuntimeError, match="Optimizer state-dict hook"):
        optimizer_state_dict_hooked(opt)


def test_a_module_that_saves_or_loads_its_own_way_is_reported():
    class Saves(nn.Linear):
        def _save_to_state_dict(self, destination, prefix, keep_vars):
            super()._save_to_state_dict(destination, prefix, keep_vars)
            destination[prefix + "scale"] = torch.ones(1)

    class Loads(nn.Linear):
        def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
            state_dict.pop(prefix + "scale", None)
            super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    for plain in (nn.Linear, nn.Sequential, nn.LayerNorm, nn.Embedding, nn.BatchNorm1d,
                  nn.BatchNorm2d, nn.SyncBatchNorm, nn.Module):  # fmt: skip
        assert module_saves_plainly(plain), plain
    assert not module_saves_plainly(Saves) and not module_saves_plainly(Loads)
    # instance norm rewrites running stats on load: not plain
    assert not module_saves_plainly(nn.InstanceNorm1d)
    # the method reported is the one state_dict calls
    assert "scale" in Saves(2, 1).state_dict()


def test_batch_norms_own_load_is_a_plain_load_for_a_full_state_dict():
    # module_saves_plainly counts batch norm's _load_from_state_dict as plain:
    # given every key (as a copy has) it loads like nn.Module's
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3)
    bn(torch.randn(8, 3))
    sd = {k: v.clone() for k, v in bn.state_dict().items()}
    other = nn.BatchNorm1d(3)
    nn.Module._load_from_state_dict(other, dict(sd), "", {}, True, [], [], [])
    again = nn.BatchNorm1d(3)
    again.load_state_dict(sd)
    for k, v in sd.items():
        assert torch.equal(getattr(other, k), v) and torch.equal(getattr(again, k), v), k


def test_module_state_dicts_are_the_live_children_parameters_and_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    model[1].register_buffer("scratch", torch.zeros(1), persistent=False)
    for m in model.modules():
        children, params, buffers = module_state_dicts(m)
        assert list(children.items()) == list(m.named_children())
        assert list(params.items()) == list(m.named_parameters(recurse=False))
        assert list(buffers.items()) == list(m.named_buffers(recurse=False))
    children, params, buffers = module_state_dicts(model[0])
    model[0].register_parameter("extra", nn.Parameter(torch.ones(1)))
    model[0].register_buffer("count", torch.zeros(1))
    assert params["extra"] is model[0].extra and buffers["count"] is model[0].count  # live
    model.add_module("out", nn.Linear(2, 1))
    assert module_state_dicts(model)[0]["out"] is model.out
    model[0].bias = None  # a None entry: named_parameters skips it, the dict keeps it
    assert params["bias"] is None and "bias" not in dict(model[0].named_parameters())
    del model[0]._parameters
    with pytest.raises(RuntimeError, match="_parameters"):
        module_state_dicts(model[0])
