"""DivergenceGuard's copies through a Layout: no state_dict walk, the same copy, in place."""

from collections import deque

import pytest
import torch
from torch import nn

from gradwise.train._guard_checks import GradCheck
from gradwise.train._guard_layout import Layout
from gradwise.train._rollback import Snapshot, _clone

from .test_guard_copies import State, equal, tensors, trained


def setup(opt="adam", steps=2):
    model, optimizer, train = trained(steps, opt)
    train()
    state = State(model, optimizer, step=steps)
    return model, optimizer, train, state, Layout(model, optimizer)


def live(model, optimizer):
    """The state as a fresh state_dict copy: what a copy must equal."""
    return _clone(model.state_dict()), _clone(optimizer.state_dict())


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_a_copy_through_the_layout_equals_state_dict_and_is_refreshed_in_place(opt):
    model, optimizer, train, state, layout = setup(opt)
    snap = Snapshot.take(state, deque([1.0]), layout=layout)
    assert snap.bound is not None and snap.bound[0] is layout  # matched to the live tensors
    m, o = live(model, optimizer)
    assert equal(snap.model, m) and equal(snap.optimizer, o)
    assert type(snap.model) is type(m) and snap.model._metadata == m._metadata
    ptrs = [t.data_ptr() for t in tensors([snap.model, snap.optimizer])]
    train()
    optimizer.param_groups[0]["lr"] = 0.03
    state.step = 4
    walks = []
    # counts the walks; registered after the layout was learnt, so the layout goes on
    model.register_state_dict_pre_hook(lambda *a: walks.append(1))
    again = Snapshot.take(state, deque([2.0]), reuse=snap, layout=layout)
    assert again is snap and walks == []  # refreshed without a state_dict walk
    assert [t.data_ptr() for t in tensors([snap.model, snap.optimizer])] == ptrs
    m, o = live(model, optimizer)
    assert equal(snap.model, m) and equal(snap.optimizer, o)
    assert snap.optimizer["param_groups"][0]["lr"] == 0.03 and snap.step == 4
    train()  # still a copy: training on does not move it
    assert not equal(snap.model, _clone(model.state_dict()))


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_restore_through_the_layout_writes_in_place_exactly(opt):
    model, optimizer, train, state, layout = setup(opt)
    snap = Snapshot.take(state, deque(), layout=layout)
    saved_model, saved_opt = live(model, optimizer)
    params = list(model.parameters())
    buffers = [t for st in optimizer.state.values() for t in st.values()]
    train()
    optimizer.param_groups[0]["lr"] = 0.001
    snap.restore(state, layout=layout)
    m, o = live(model, optimizer)
    assert equal(m, saved_model) and equal(o, saved_opt)  # lr 0.1 again, every state tensor
    assert list(model.parameters()) == params  # the same tensors, written in place
    assert all(a is b for a, b in zip(buffers, (t for st in optimizer.state.values()
                                                 for t in st.values()), strict=True))  # fmt: skip
    train()  # the copy is not shared with the live state
    assert equal(snap.model, saved_model) and equal(snap.optimizer, saved_opt)
    # the same training from the restored state as from a fresh load of the copy
    model2, optimizer2, train2 = trained(2, opt)
    model2.load_state_dict(saved_model)
    optimizer2.load_state_dict(_clone(saved_opt))
    snap.restore(state, layout=layout)
    train()
    train2()
    assert equal(_clone(model.state_dict()), _clone(model2.state_dict()))


def test_a_changed_structure_is_seen_and_copied_afresh():
    model, optimizer, train, state, layout = setup("adam")
    snap = Snapshot.take(state, deque(), layout=layout)
    gen = layout.generation
    model[2] = nn.Linear(3, 2)  # another module, another shape
    assert not layout.current()
    new = Snapshot.take(state, deque(), reuse=snap, layout=layout)
    assert new is not snap and layout.generation == gen + 1
    assert equal(new.model, _clone(model.state_dict()))
    # a copy bound before the change is not written back into the new structure
    assert not layout.copy_out(snap, lambda d, s: None)
    # a new param group, a replaced optimizer state: seen too
    layout = Layout(model, optimizer)
    snap = Snapshot.take(state, deque(), layout=layout)
    optimizer.add_param_group({"params": list(model[2].parameters())})
    assert not layout.current()
    layout = Layout(model, optimizer)
    snap = Snapshot.take(state, deque(), layout=layout)
    optimizer.load_state_dict(_clone(optimizer.state_dict()))  # new state tensors
    assert not layout.current()
    new = Snapshot.take(state, deque(), reuse=snap, layout=layout)
    assert equal(new.optimizer, _clone(optimizer.state_dict()))
    # a parameter given data of another shape keeps its identity: the shape is checked
    layout = Layout(model, optimizer)
    Snapshot.take(state, deque(), layout=layout)
    model[0].bias.data = torch.zeros(5)
    assert not layout.current()


def test_what_the_layout_cannot_vouch_for_goes_through_state_dict():
    class Extra(nn.Linear):
        def get_extra_state(self):
            return {"calls": 1}

        def set_extra_state(self, state):
            pass

    model = nn.Sequential(Extra(4, 3), nn.Linear(3, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(8, 4)).sum().backward()
    optimizer.step()
    state = State(model, optimizer)
    layout = Layout(model, optimizer)
    snap = Snapshot.take(state, deque(), layout=layout)
    assert not layout.ready() and snap.bound is None
    assert snap.model["0._extra_state"] == {"calls": 1}  # state_dict's own output
    assert equal(snap.model, _clone(model.state_dict()))
    with torch.no_grad():
        model[1].weight.add_(1.0)
    snap.restore(state, layout=layout)  # load_state_dict
    assert torch.equal(model[1].weight, snap.model["1.weight"])
    # an optimizer with state-dict hooks: the same
    plain = nn.Linear(2, 1)
    opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    opt.register_state_dict_post_hook(lambda o, sd: sd)
    assert not Layout(plain, opt).learn()


def test_grads_finite_checks_every_gradient_and_skips_missing_ones():
    params = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    check = GradCheck(params)
    assert check.grads_finite()  # no gradient at all
    params[1].grad = torch.ones(2)
    assert check.grads_finite()  # one of two
    params[1].grad[0] = float("inf")
    assert not check.grads_finite()
    params[0].grad = torch.ones(3)
    params[1].grad = torch.ones(2)
    assert check.grads_finite()  # the flag was cleared after the find
    params[0].grad[2] = float("nan")
    assert not check.grads_finite()
    assert torch.isnan(params[0].grad[2]) and params[0].grad[0] == 1.0  # left as they were


def test_a_guarded_run_copies_without_walking_the_state_dicts(monkeypatch):
    from gradwise.train import DivergenceGuard, Trainer

    from .test_guard_copies import data

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    walks, takes = [], []
    plain_walk, plain_take = nn.Module.state_dict, Snapshot.take.__func__

    def counted_walk(self, *args, **kwargs):
        if self is model:
            walks.append(1)
        return plain_walk(self, *args, **kwargs)

    def counted_take(cls, *args, **kwargs):
        takes.append(1)
        return plain_take(cls, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "state_dict", counted_walk)
    monkeypatch.setattr(Snapshot, "take", classmethod(counted_take))
    X, y = data()
    trainer = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), nn.MSELoss(),
        epochs=6, batch_size=8, seed=0, callbacks=[DivergenceGuard(snapshot_every=1)],
    )  # fmt: skip
    trainer.fit((X, y), (X[:16], y[:16]))
    assert len(takes) >= 36  # a copy every step, and the best epochs'
    # fit start, the layout found twice (before and after the optimizer's state
    # appears), the first copies with no memory to reuse: the rest walk nothing
    assert len(walks) <= 6, (len(walks), len(takes))
