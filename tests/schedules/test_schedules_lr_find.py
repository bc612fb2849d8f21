"""`lr_find`: the sweep, smoothing, early stop, restoring state, groups, suggestion."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from gradwise.errors import ConfigError, DataError
from gradwise.schedules import attach, cosine, lr_find


def regression_data(n: int = 256, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    y = X @ torch.randn(6, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    return X, y


class Net(torch.nn.Module):
    """Has every kind of state: params, BN buffers, a non-persistent buffer, dropout."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(6, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Dropout(0.2)
        )
        self.head = torch.nn.Linear(16, 1)
        self.register_buffer("calls", torch.zeros(1), persistent=False)

    def forward(self, x):
        self.calls += 1
        return self.head(self.body(x))


def snapshot_tensors(model):
    return {k: v.clone() for k, v in list(model.named_parameters()) + list(model.named_buffers())}


def assert_same_optimizer_state(a: dict, b: dict):
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        for name, value in a["state"][key].items():
            other = b["state"][key][name]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other


def test_model_optimizer_and_rngs_are_bit_identical_afterwards():
    torch.manual_seed(0)
    X, y = regression_data()
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(3):  # give Adam some state and the params gradients
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X[:32]), y[:32]).backward()
        opt.step()
    model.eval()
    model.body[1].train()  # a mix of modes to restore
    before = snapshot_tensors(model)
    grads = [p.grad.clone() for p in model.parameters()]
    opt_before = {
        "state": {
            k: {n: (v.clone() if torch.is_tensor(v) else v) for n, v in s.items()}
            for k, s in opt.state_dict()["state"].items()
        },
        "param_groups": [dict(g) for g in opt.state_dict()["param_groups"]],
    }
    modes = [m.training for m in model.modules()]
    torch_rng, np_rng, py_rng = torch.get_rng_state(), np.random.get_state(), random.getstate()

    result = lr_find(model, torch.nn.functional.mse_loss, (X, y), opt, num_steps=40, max_lr=1.0)

    assert len(result.lrs) > 10
    for name, value in snapshot_tensors(model).items():
        assert torch.equal(value, before[name]), name
    for p, g in zip(model.parameters(), grads):
        assert torch.equal(p.grad, g)
    assert_same_optimizer_state(opt.state_dict(), opt_before)
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), torch_rng)
    next_draws = (torch.rand(3), np.random.rand(3), random.random())
    torch.set_rng_state(torch_rng)
    np.random.set_state(np_rng)
    random.setstate(py_rng)
    assert torch.equal(next_draws[0], torch.rand(3))
    assert np.array_equal(next_draws[1], np.random.rand(3))
    assert next_draws[2] == random.random()


def test_state_is_restored_when_the_loss_raises():
    X, y = regression_data()
    model = torch.nn.Linear(6, 1)
    before = snapshot_tensors(model)
    calls = {"n": 0}

    def flaky(out, target):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("boom")
        return torch.nn.functional.mse_loss(out, target)

    with pytest.raises(RuntimeError, match="boom"):
        lr_find(model, flaky, (X, y), num_steps=20)
    for name, value in snapshot_tensors(model).items():
        assert torch.equal(value, before[name])


def test_sweep_is_exponential_and_smoothing_is_bias_corrected_ema():
    X, y = regression_data()
    model = torch.nn.Linear(6, 1)
    res = lr_find(
        model,
        torch.nn.functional.mse_loss,
        (X, y),
        min_lr=1e-6,
        max_lr=1e-2,
        num_steps=30,
        smooth=0.9,
    )
    assert not res.stopped_early and len(res.lrs) == 30
    expected = np.geomspace(1e-6, 1e-2, 30)
    np.testing.assert_allclose(res.lrs, expected, rtol=1e-12)
    avg, smoothed = 0.0, []
    for i, loss in enumerate(res.raw_losses):
        avg = 0.9 * avg + 0.1 * loss
        smoothed.append(avg / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(res.losses, smoothed, rtol=1e-12)


def test_stops_early_once_smoothed_loss_exceeds_stop_factor_times_minimum():
    X, y = regression_data()
    res = lr_find(
        torch.nn.Linear(6, 1),
        torch.nn.functional.mse_loss,
        (X, y),
        max_lr=100.0,
        num_steps=100,
        stop_factor=4.0,
    )
    assert res.stopped_early and len(res.lrs) < 100
    losses = np.array(res.losses)
    assert losses[-1] > 4 * losses.min() and math.isfinite(res.raw_losses[-1])
    assert np.all(losses[1:-1] <= 4 * np.minimum.accumulate(losses)[1:-1])


def test_groups_sweep_together_and_keep_their_ratios():
    X, y = regression_data()
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 1e-4},
            {"params": model[2].parameters(), "lr": 1e-3},
        ],
        momentum=0.9,
    )
    seen = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append([g["lr"] for g in o.param_groups]))
    res = lr_find(
        model, torch.nn.functional.mse_loss, (X, y), opt, min_lr=1e-5, max_lr=1.0, num_steps=25
    )
    seen = np.array(seen)
    np.testing.assert_allclose(seen[:, 1], res.lrs, rtol=1e-15)  # the top group sweeps min->max
    np.testing.assert_allclose(seen[:, 1] / seen[:, 0], 10.0, rtol=1e-12)
    assert seen[0, 1] == pytest.approx(1e-5)
    assert res.group_ratios == pytest.approx([0.1, 1.0])
    assert res.group_lrs == pytest.approx([res.suggestion * 0.1, res.suggestion])
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-3]  # restored


def test_base_rates_come_from_initial_lr_when_a_scheduler_is_attached():
    X, y = regression_data()
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 2e-3},
            {"params": model[2].parameters(), "lr": 1e-3},
        ]
    )
    attach(opt, cosine(10))  # lr now base * 1.0; initial_lr set
    res = lr_find(model, torch.nn.functional.mse_loss, (X, y), opt, num_steps=10)
    assert res.group_ratios == pytest.approx([1.0, 0.5])


def test_dataloader_is_cycled_and_device_argument_works():
    X, y = regression_data(n=48)
    loader = DataLoader(TensorDataset(X, y), batch_size=16)  # 3 batches per pass
    model = torch.nn.Linear(6, 1)
    res = lr_find(
        model, torch.nn.functional.mse_loss, loader, num_steps=10, max_lr=1e-2, device="cpu"
    )
    assert len(res.raw_losses) == 10
    # Batch i of the sweep is batch i % 3 of the loader: replay the sweep by hand.
    replay = torch.nn.Linear(6, 1)
    replay.load_state_dict(model.state_dict())
    opt = torch.optim.SGD(replay.parameters(), lr=1e-7, momentum=0.9)
    batches = list(loader)
    for i, lr in enumerate(res.lrs):
        opt.param_groups[0]["lr"] = lr
        xb, yb = batches[i % 3]
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(replay(xb), yb)
        assert loss.item() == res.raw_losses[i]
        loss.backward()
        opt.step()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("resident", [False, True], ids=["moved", "resident"])
def test_sweep_on_cuda_leaves_model_optimizer_and_rngs_unchanged(resident):
    X, y = regression_data()
    home = "cuda" if resident else "cpu"
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1)
    )
    model.to(home)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(X.to(home)), y.to(home)).backward()
    opt.step()
    before = snapshot_tensors(model)
    adam_before = {k: v.clone() for k, v in opt.state[model[0].weight].items()}
    cuda_rng = torch.cuda.get_rng_state()
    res = lr_find(
        model,
        torch.nn.functional.mse_loss,
        (X, y),
        opt,
        num_steps=30,
        device=None if resident else "cuda",
    )
    assert len(res.lrs) > 5 and res.suggestion > 0
    assert all(p.device.type == home for p in model.parameters())
    for name, value in opt.state[model[0].weight].items():
        assert value.device == adam_before[name].device and torch.equal(value, adam_before[name])
    for name, value in snapshot_tensors(model).items():
        assert torch.equal(value, before[name])
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)


def test_plot_writes_a_png(tmp_path):
    X, y = regression_data()
    res = lr_find(torch.nn.Linear(6, 1), torch.nn.functional.mse_loss, (X, y), num_steps=30)
    path = res.plot(tmp_path / "sub" / "lr_find.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["lr_find.png"]  # no temp file left


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_lr": 0.0}, "min_lr"),
        ({"min_lr": 1.0, "max_lr": 0.1}, "max_lr"),
        ({"num_steps": 1}, "num_steps"),
        ({"smooth": 1.0}, "smooth"),
        ({"stop_factor": 1.0}, "stop_factor"),
        ({"rule": "valley"}, "rule"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    X, y = regression_data()
    with pytest.raises(ConfigError, match=match):
        lr_find(torch.nn.Linear(6, 1), torch.nn.functional.mse_loss, (X, y), **kwargs)


def test_bad_data_raises_data_error():
    with pytest.raises(DataError, match="same, non-zero number of rows"):
        lr_find(
            torch.nn.Linear(6, 1),
            torch.nn.functional.mse_loss,
            (torch.ones(4, 6), torch.ones(3, 1)),
        )
    with pytest.raises(DataError, match=r"\(inputs, targets\) pair"):
        lr_find(torch.nn.Linear(6, 1), torch.nn.functional.mse_loss, [torch.ones(4, 6)])
