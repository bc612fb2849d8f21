"""The training loop against hand-written torch loops: same numbers, bit for bit where possible."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from gradwise.nn import binary, multiclass, regression
from gradwise.train import Callback, Trainer


def data(n=64, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = X @ torch.randn(d, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    return X, y


def linear(seed=0, d=5, out=1):
    torch.manual_seed(seed)
    return nn.Linear(d, out)


def net(seed=0, d=5, out=3):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(d, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, out)
    )


def params(model):
    return [p.detach().clone() for p in model.state_dict().values()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(params(a), params(b), strict=True))


class Plain(Dataset):
    """A Dataset that is not a TensorDataset, to force the DataLoader path."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


def test_matches_hand_written_loop_bit_for_bit():
    X, y = data()
    ours, ref = linear(), linear()
    Trainer(
        ours,
        torch.optim.SGD(ours.parameters(), lr=0.05, momentum=0.9),
        nn.MSELoss(),
        epochs=3,
        batch_size=16,
        shuffle=False,
    ).fit((X, y))
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        for i in range(0, 64, 16):
            loss = nn.functional.mse_loss(ref(X[i : i + 16]), y[i : i + 16])
            loss.backward()
            opt.step()
            opt.zero_grad()
    assert same(ours, ref)


def test_epoch_record_counts_and_train_loss():
    X, y = data(n=70)
    model = linear()
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.0),  # lr 0: the loss is that of the initial model
        nn.MSELoss(),
        epochs=2,
        batch_size=16,
        grad_accum=2,
    )
    hist = t.fit((X, y))
    # 70 rows / 16 = 5 batches; ceil(5 / 2) = 3 steps per epoch.
    assert [r["step"] for r in hist] == [3, 6]
    assert [r["batches"] for r in hist] == [5, 10]
    want = nn.functional.mse_loss(model(X), y).item()
    assert hist[0]["train_loss"] == pytest.approx(want, rel=1e-6)
    assert hist.series("lr") == [0.0, 0.0]
    assert hist[1]["epoch_time"] > 0


def test_grad_accum_equals_big_batch():
    X, y = data(n=96)
    a, b = linear(), linear()
    for model, bs, acc in [(a, 8, 4), (b, 32, 1)]:
        Trainer(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            nn.MSELoss(),
            epochs=2,
            batch_size=bs,
            grad_accum=acc,
            shuffle=False,
        ).fit((X, y))
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_last_partial_accumulation_group_steps_with_its_own_mean():
    X, y = data(n=40)  # 5 batches of 8, grad_accum 2: groups of 2, 2, 1
    ours, ref = linear(), linear()
    steps = []

    class Count(Callback):
        def on_step_end(self, state):
            steps.append((state.batch_in_epoch, float(state.loss)))

    Trainer(
        ours,
        torch.optim.SGD(ours.parameters(), lr=0.1),
        nn.MSELoss(),
        batch_size=8,
        grad_accum=2,
        shuffle=False,
        callbacks=[Count()],
    ).fit((X, y))
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    want = []
    for group in ([0, 1], [2, 3], [4]):
        total = 0.0
        for b in group:
            loss = nn.functional.mse_loss(ref(X[8 * b : 8 * b + 8]), y[8 * b : 8 * b + 8])
            (loss / len(group)).backward()
            total += loss.item() / len(group)
        want.append((group[-1] + 1, total))
        opt.step()
        opt.zero_grad()
    assert [s[0] for s in steps] == [2, 4, 5]
    assert [s[1] for s in steps] == pytest.approx([w[1] for w in want], rel=1e-6)
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_clip_grad_norm_matches_torch_and_reports_norm():
    X, y = data()
    y = y * 100  # large gradients so that clipping bites
    ours, ref = linear(), linear()
    norms = []

    class Norms(Callback):
        def on_step_end(self, state):
            norms.append(float(state.grad_norm))

    Trainer(
        ours,
        torch.optim.SGD(ours.parameters(), lr=0.01),
        nn.MSELoss(),
        batch_size=32,
        shuffle=False,
        clip_grad_norm=1.0,
        callbacks=[Norms()],
    ).fit((X, y))
    opt = torch.optim.SGD(ref.parameters(), lr=0.01)
    want = []
    for i in (0, 32):
        nn.functional.mse_loss(ref(X[i : i + 32]), y[i : i + 32]).backward()
        want.append(float(nn.utils.clip_grad_norm_(ref.parameters(), 1.0)))
        opt.step()
        opt.zero_grad()
    assert norms == pytest.approx(want, rel=1e-6) and min(norms) > 1.0
    assert same(ours, ref)


def test_seed_makes_runs_identical_and_differs_across_seeds():
    X = torch.randn(80, 5)
    y = torch.randint(0, 3, (80,))

    def run(seed):
        model = net()
        Trainer(
            model,
            torch.optim.Adam(model.parameters(), lr=1e-2),
            multiclass(3),
            epochs=2,
            batch_size=16,
            seed=seed,
        ).fit((X, y))
        return model

    assert same(run(7), run(7))
    assert not same(run(7), run(8))


def test_tensor_fast_path_equals_dataloader_path():
    """Tuples are sliced directly; they must see the batches a DataLoader would."""
    X = torch.randn(70, 5)
    y = torch.randint(0, 3, (70,))
    models = []
    for train in [(X, y), TensorDataset(X, y), Plain(X, y)]:
        model = net()
        Trainer(
            model,
            torch.optim.Adam(model.parameters(), lr=1e-2),
            multiclass(3),
            epochs=2,
            batch_size=16,
            seed=3,
        ).fit(train)
        models.append(model)
    assert same(models[0], models[1]) and same(models[0], models[2])


def test_numpy_arrays_and_user_dataloader():
    X, y = data()
    a, b = linear(), linear()
    Trainer(
        a, torch.optim.SGD(a.parameters(), lr=0.1), nn.MSELoss(), batch_size=16, shuffle=False
    ).fit((X.double().numpy(), y.numpy()))
    Trainer(b, torch.optim.SGD(b.parameters(), lr=0.1), nn.MSELoss()).fit(
        DataLoader(TensorDataset(X, y), batch_size=16)
    )
    assert same(a, b)


def test_optimizer_and_scheduler_factories_step_per_step_and_epoch():
    X, y = data()
    lrs = {}
    for per in ("step", "epoch"):
        model = linear()
        t = Trainer(
            model,
            lambda p: torch.optim.SGD(p, lr=1.0),
            nn.MSELoss(),
            epochs=3,
            batch_size=32,
            scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
            scheduler_per=per,
        )
        assert t.optimizer.param_groups[0]["params"][0] is model.weight
        lrs[per] = t.fit((X, y)).series("lr")  # the lr of each epoch's last step
    assert lrs["step"] == [0.5, 0.125, 0.03125]  # two steps per epoch, halving each
    assert lrs["epoch"] == [1.0, 0.5, 0.25]
    assert t.optimizer.param_groups[0]["lr"] == 0.125


def test_reduce_on_plateau_steps_on_val_loss():
    X, y = data()
    model = linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    # Validation targets of the opposite sign: val_loss rises every epoch, so the
    # plateau scheduler halves the lr after each epoch but the first.
    hist = Trainer(
        model, opt, nn.MSELoss(), epochs=3, batch_size=64, scheduler=sched, scheduler_per="epoch"
    ).fit((X, y), val=(X, -y))
    assert hist.series("lr") == [0.2, 0.2, 0.1]
    assert opt.param_groups[0]["lr"] == 0.05


def test_evaluate_and_predict_match_hand_computation():
    X, y = data(n=50)
    yc = (y.squeeze(1) > 0).long()
    model = linear(out=2)
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), multiclass(2), batch_size=16)
    res = t.evaluate((X, yc))
    with torch.no_grad():
        out = model(X)
    assert res["loss"] == pytest.approx(nn.functional.cross_entropy(out, yc).item(), rel=1e-6)
    assert res["accuracy"] == pytest.approx((out.argmax(1) == yc).float().mean().item())
    both = t.evaluate({"a": (X, yc), "b": (X[:10], yc[:10])})
    assert both["a"] == res and set(both["b"]) == {"loss", "accuracy"}
    torch.testing.assert_close(t.predict(X), out)
    torch.testing.assert_close(t.predict((X, yc), kind="probs"), out.softmax(1))
    assert torch.equal(t.predict(X.numpy(), kind="labels"), out.argmax(1))
    # Other batch sizes may pick other matmul kernels: equal up to round-off.
    torch.testing.assert_close(t.predict(DataLoader(TensorDataset(X, yc), batch_size=7)), out)
    assert model.training  # evaluate/predict put the mode back


def test_regression_and_binary_heads_default_metrics():
    X, y = data()
    model = linear()
    hist = Trainer(model, torch.optim.Adam(model.parameters(), 1e-2), regression(), epochs=2).fit(
        (X, y.squeeze(1)), val=(X, y.squeeze(1))
    )
    assert {"train_mse", "train_mae", "train_r2", "val_mse", "val_mae", "val_r2"} <= set(hist[0])
    # MSELoss over the same data equals the mse metric.
    assert hist[1]["val_loss"] == pytest.approx(hist[1]["val_mse"], rel=1e-6)
    model = linear()
    yb = (y.squeeze(1) > 0).long()
    hist = Trainer(model, torch.optim.Adam(model.parameters(), 1e-2), binary()).fit(
        (X, yb), (X, yb)
    )
    with torch.no_grad():
        acc = ((model(X).squeeze(1) > 0).long() == yb).float().mean().item()
    assert hist[0]["val_accuracy"] == pytest.approx(acc)


def test_bf16_autocast_is_active_on_cpu():
    X, y = data()
    model = linear()
    t32 = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss())
    t16 = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss(), precision="bf16"
    )
    p32, p16 = t32.predict(X), t16.predict(X)
    assert p16.dtype == torch.float32
    assert not torch.equal(p32, p16)
    torch.testing.assert_close(p16, p32, rtol=2e-2, atol=2e-2)
    hist = t16.fit((X, y))
    assert math.isfinite(hist[0]["train_loss"])


def test_device_auto_and_cpu_training_moves_model():
    model = linear().double()
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss(), device="auto")
    assert t.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert next(model.parameters()).device.type == t.device.type
    X, y = data()
    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss()).fit(
        (X.double(), y.double())
    )
    assert model.weight.dtype == torch.float64
    assert np.isfinite(model.weight.detach().numpy()).all()
