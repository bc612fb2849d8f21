"""DivergenceGuard's state copies reuse their memory: in place, exact, never shared."""

import math
from collections import deque

import pytest
import torch
from torch import nn

from gradwise.train import Callback, DivergenceGuard, Trainer
from gradwise.train._rollback import Snapshot, _clone, copy_all

N, D = 48, 4  # batch 8, no shuffling: 6 steps per epoch, batch i is rows 8i..8i+7


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g)
    return X, X @ torch.randn(D, 1, generator=g) + 0.1 * torch.randn(N, 1, generator=g)


class State:
    """The three fields Snapshot reads."""

    def __init__(self, model, optimizer, step=0):
        self.model, self.optimizer, self.scheduler, self.step = model, optimizer, None, step


def trained(steps, opt="adam", seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(D, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    optimizer = (
        torch.optim.Adam(model.parameters(), lr=0.1)
        if opt == "adam"
        else torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    )
    X, y = data(seed)
    return model, optimizer, lambda: step(model, optimizer, X, y, steps)


def step(model, optimizer, X, y, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(X), y).backward()
        optimizer.step()


def tensors(obj):
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in tensors(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in tensors(v)]
    return []


def equal(a, b):
    """Same structure, same numbers, same tensor values (bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(equal, a, b))
    return a == b


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_a_reused_copy_is_overwritten_in_place_and_equals_a_fresh_one(opt):
    model, optimizer, train = trained(2, opt)
    train()
    state = State(model, optimizer, step=2)
    old = Snapshot.take(state, deque([1.0, 2.0]))
    before = [t.data_ptr() for t in tensors(old.as_dict())]
    old.owned = True  # as_dict handed the tensors out; this test only looked
    train()
    optimizer.param_groups[0]["lr"] = 0.03
    state.step = 4
    new = Snapshot.take(state, deque([3.0]), reuse=old)
    fresh = Snapshot.take(state, deque([3.0]))
    assert new is old and new.owned  # the same memory, no allocation
    assert [t.data_ptr() for t in tensors(new.as_dict())] == before
    assert equal(new.model, fresh.model) and equal(new.optimizer, fresh.optimizer)
    assert new.step == 4 and new.losses == [3.0]
    assert new.optimizer["param_groups"][0]["lr"] == 0.03
    # still a copy: training on does not move it
    train()
    assert equal(new.model, fresh.model) and not equal(new.model, _clone(model.state_dict()))


def test_a_changed_structure_gets_a_fresh_copy():
    model, optimizer, train = trained(1)
    state = State(model, optimizer)
    empty = Snapshot.take(state, deque())  # before any step: no Adam state yet
    assert empty.optimizer["state"] == {}
    train()
    new = Snapshot.take(state, deque(), reuse=empty)
    assert new is not empty and equal(new.optimizer, _clone(optimizer.state_dict()))
    # a tensor of another shape: a fresh copy too, never a broadcast into the old one
    old = Snapshot.take(state, deque())
    model[2] = nn.Linear(3, 2)
    new = Snapshot.take(state, deque(), reuse=old)
    assert new is not old and new.model["2.weight"].shape == (2, 3)
    assert equal(new.model, _clone(model.state_dict()))


def test_a_copy_handed_out_or_loaded_is_never_overwritten():
    model, optimizer, train = trained(1)
    train()
    state = State(model, optimizer)
    snap = Snapshot.take(state, deque())
    saved = snap.as_dict()  # e.g. into a checkpoint
    kept = _clone(saved)
    train()
    assert Snapshot.take(state, deque(), reuse=snap) is not snap
    assert equal(saved, kept)
    loaded = Snapshot(**kept)  # from a checkpoint: not its own memory
    assert Snapshot.take(state, deque(), reuse=loaded) is not loaded


def test_foreach_copy_is_there():
    # copy_all uses torch's private multi-tensor copy; without it, one copy_ per tensor
    assert callable(getattr(torch, "_foreach_copy_", None)), (
        "torch._foreach_copy_ is gone: gradwise.train._rollback.copy_all falls back to a "
        "copy_ per tensor (slower guard copies); find the new public name"
    )
    dst, src = [torch.zeros(3), torch.zeros(2, 2)], [torch.arange(3.0), torch.ones(2, 2)]
    copy_all(dst, src)
    assert torch.equal(dst[0], src[0]) and torch.equal(dst[1], src[1])


# -- the guard: copies rotate through the same memory, rescues stay exact ------------------


class Poison:
    """MSE loss, NaN at the given batches of the run (1-based)."""

    def __init__(self, nan_at):
        self.nan_at, self.batch = set(nan_at), 0

    def __call__(self, out, target):
        loss = nn.functional.mse_loss(out, target)
        return loss * float("nan") if self.batch in self.nan_at else loss


class Record(Callback):
    """Counts the batches for the loss; copies the weights after each step (after the guard)."""

    def __init__(self, loss):
        self.loss, self.after = loss, {}

    def on_batch_start(self, state):
        self.loss.batch = state.batches + 1

    def on_step_end(self, state):
        self.after[state.step] = {k: v.clone() for k, v in state.model.state_dict().items()}


def test_rescues_with_a_copy_every_step_come_back_to_the_exact_state():
    # snapshot_every=1: every step's copy goes into the memory of the one before.
    # NaN at steps 9 and 12. Step 9 restores step 7 (step 8's copy is not yet
    # confirmed); step 12 restores step 10. The run then continues as plain
    # torch does from step 10's state with the lr quartered.
    loss = Poison({9, 12})
    torch.manual_seed(0)
    model = nn.Linear(D, 1)
    rec = Record(loss)
    guard = DivergenceGuard(snapshot_every=1, loss_factor=None)
    t = Trainer(model, torch.optim.Adam(model.parameters(), lr=0.1), loss, epochs=3,
                batch_size=8, shuffle=False, callbacks=[rec, guard])  # fmt: skip
    hist = t.fit(data())
    ev = [e for e in hist.events if e["kind"] == "divergence_rescue"]
    assert [(e["step"], e["restored_step"]) for e in ev] == [(9, 7), (12, 10)]
    assert all(torch.equal(rec.after[9][k], rec.after[7][k]) for k in rec.after[7])
    assert all(torch.equal(rec.after[12][k], rec.after[10][k]) for k in rec.after[10])
    # Reference: plain Adam, steps 1-7, lr halved, step 10 on batch 10 (rows 24..31),
    # then lr halved again and steps 13-18 on batches 13..18.
    X, y = data()
    torch.manual_seed(0)
    ref = nn.Linear(D, 1)
    opt = torch.optim.Adam(ref.parameters(), lr=0.1)

    def batch(b):  # batch b of the run, 1-based
        i = (b - 1) % 6
        opt.zero_grad()
        nn.functional.mse_loss(ref(X[8 * i : 8 * i + 8]), y[8 * i : 8 * i + 8]).backward()
        opt.step()

    for b in range(1, 8):
        batch(b)
    opt.param_groups[0]["lr"] = 0.05
    batch(10)
    opt.param_groups[0]["lr"] = 0.025
    for b in range(13, 19):
        batch(b)
    for a, b in zip(ref.parameters(), t.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert math.isclose(t.optimizer.param_groups[0]["lr"], 0.025)


class Script(Callback):
    """Writes scripted val_loss values before the guard reads them."""

    order = -100

    def __init__(self, values):
        self.values = values

    def on_epoch_end(self, state):
        state.metrics["val_loss"] = self.values[state.epoch - 1]


class Momenta(Callback):
    def __init__(self):
        self.after = {}

    def on_step_end(self, state):
        opt = state.optimizer
        params = [p for g in opt.param_groups for p in g["params"]]
        self.after[state.step] = [opt.state[p]["momentum_buffer"].clone() for p in params]


def test_the_end_restore_gives_the_best_epochs_optimizer_state_exactly():
    # epoch 2 is the best; epochs 3 and 4 stay within the tolerance (no rescue):
    # the end puts epoch 2 (step 12) back, weights and momentum, its copy handed over
    loss = Poison(())
    torch.manual_seed(0)
    model = nn.Linear(D, 1)
    rec, mom = Record(loss), Momenta()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    t = Trainer(model, opt, loss, epochs=4, batch_size=8, shuffle=False,
                callbacks=[rec, mom, Script([1, 0.5, 0.52, 0.53]),
                           DivergenceGuard(loss_factor=None)])  # fmt: skip
    hist = t.fit(data())
    (best,) = [e for e in hist.events if e["kind"] == "best_weights"]
    assert best["epoch"] == 2 and best["restored"] is True
    assert all(torch.equal(t.model.state_dict()[k], rec.after[12][k]) for k in rec.after[12])
    now = [opt.state[p]["momentum_buffer"] for p in model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(now, mom.after[12], strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(now, mom.after[24], strict=True))


def test_spike_median_needs_both_conditions():
    from gradwise.train._guard_checks import spike_median

    window = [1.0, 2.0, 3.0]  # median 2
    assert spike_median(5.0, window, start=4.0, loss_factor=2.0) == 2.0
    assert spike_median(5.0, window, start=6.0, loss_factor=2.0) is None  # below the start
    assert spike_median(3.5, window, start=1.0, loss_factor=2.0) is None  # < 2 x median
    assert spike_median(4.0, window, start=1.0, loss_factor=2.0) is None  # equal is no spike
