"""GradientDiagnostics: numbers against hand-built nets and autograd, warnings, hooks, resume."""

import json
import math

import pytest
import torch
from torch import nn

from gradwise.errors import ConfigError
from gradwise.report import render_html
from gradwise.train import Callback, Checkpoint, GradientDiagnostics, MetricsLogger, Trainer


def positive_data(n=32, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g) + 0.1, torch.randint(0, 2, (n,), generator=g)


def fit(model, data, callbacks, *, epochs=2, lr=0.1, batch_size=8, **kw):
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=lr),
        nn.CrossEntropyLoss(),
        epochs=epochs,
        batch_size=batch_size,
        callbacks=callbacks,
        seed=0,
        **kw,
    )
    t.fit(data)
    return t


def relu_net_with_dead_units():
    """Units 0 and 2 get -(x1+x2+x3)-0.1 < 0 for positive inputs: dead from the start."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight[0] = -1.0
        net[0].bias[0] = -0.1
        net[0].weight[2] = -1.0
        net[0].bias[2] = -0.1
        net[0].weight[1] = 1.0
        net[0].bias[1] = 0.0
        net[0].weight[3] = torch.tensor([1.0, 0.0, 0.0])
        net[0].bias[3] = -0.5  # fires on some examples only: alive, not dead
    return net


def test_dead_relu_fraction_on_a_hand_built_net():
    X, y = positive_data()
    assert ((X[:, 0] - 0.5) > 0).any() and ((X[:, 0] - 0.5) <= 0).any()
    diag = GradientDiagnostics(every=1)
    fit(relu_net_with_dead_units(), (X, y), [diag], epochs=3)
    assert diag.activation_names == ["1"] and diag.activation_kinds == {"1": "relu"}
    assert [e["dead"]["1"] for e in diag.epochs] == [0.5, 0.5, 0.5]
    # a dead unit passes no gradient: its input weights never move
    assert diag.layer_names == ["0", "2"]


def test_dead_channels_of_a_convolution():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    with torch.no_grad():
        net[0].weight.abs_()  # positive weights and bias on positive inputs: all fire
        net[0].bias.fill_(0.1)
        net[0].bias[1] = -100.0  # except channel 1, which never fires on inputs in [0, 1)
    X = torch.rand(16, 1, 6, 6)
    y = torch.randint(0, 2, (16,))
    diag = GradientDiagnostics(every=1)
    fit(net, (X, y), [diag], epochs=1, lr=0.0)
    assert diag.epochs[0]["dead"]["1"] == 0.25


def sigmoid_reference_fraction(net, X, kind, threshold):
    """Saturated fraction from autograd's derivative of the activation, normalised at its peak."""
    z = net[0](X).detach().requires_grad_(True)
    act = torch.sigmoid if kind == "sigmoid" else torch.tanh
    (d,) = torch.autograd.grad(act(z).sum(), z)
    peak = 0.25 if kind == "sigmoid" else 1.0
    return int(((d / peak) < threshold).sum()) / d.numel()


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_saturated_fraction_matches_autograd_derivative(kind):
    torch.manual_seed(0)
    X = torch.randn(40, 3) * 2
    y = torch.randint(0, 2, (40,))
    act = nn.Sigmoid() if kind == "sigmoid" else nn.Tanh()
    net = nn.Sequential(nn.Linear(3, 6), act, nn.Linear(6, 2))
    with torch.no_grad():
        net[0].weight[:2] *= 0.0
        net[0].bias[:2] = 30.0  # pinned at the flat top: saturated on every example
        net[0].weight[2:4] *= 0.0
        net[0].bias[2:4] = 0.0  # at the steepest point: never saturated
        net[0].weight[4:] *= 4.0  # saturated on some examples only
    threshold = 0.2
    expected = sigmoid_reference_fraction(net, X, kind, threshold)
    assert 2 / 6 < expected < 4 / 6  # the partial units contribute
    diag = GradientDiagnostics(every=1, saturation=threshold)
    fit(net, (X, y), [diag], epochs=1, lr=0.0, batch_size=10)  # lr 0: weights stay put
    assert diag.epochs[0]["saturated"]["1"] == pytest.approx(expected, abs=1e-12)


def test_gradient_norms_and_update_ratios_match_a_hand_computation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    X, y = torch.randn(24, 5), torch.randint(0, 3, (24,))
    ref = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    ref.load_state_dict(net.state_dict())
    nn.CrossEntropyLoss()(ref(X), y).backward()
    lr = 0.05
    want = []
    for layer in (ref[0], ref[2]):
        g = torch.cat([layer.weight.grad.flatten(), layer.bias.grad.flatten()])
        w = torch.cat([layer.weight.detach().flatten(), layer.bias.detach().flatten()])
        want.append((g.norm().item(), (lr * g).norm().item() / w.norm().item()))
    diag = GradientDiagnostics(every=1)
    fit(net, (X, y), [diag], epochs=1, lr=lr, batch_size=24)  # one full-batch step
    assert diag.steps == [1]
    for j, (g, ratio) in enumerate(want):
        assert diag.step_grad_norms[0][j] == pytest.approx(g, rel=1e-5)
        assert diag.step_update_ratios[0][j] == pytest.approx(ratio, rel=1e-4)
    assert diag.epochs[0]["grad_norm"]["0"] == pytest.approx(want[0][0], rel=1e-5)


def test_accumulated_gradient_is_measured_once_per_step():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3))
    X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    ref = nn.Sequential(nn.Linear(4, 3))
    ref.load_state_dict(net.state_dict())
    nn.CrossEntropyLoss()(ref(X), y).backward()  # mean of two equal halves' means
    want = torch.cat([ref[0].weight.grad.flatten(), ref[0].bias.grad.flatten()]).norm().item()
    diag = GradientDiagnostics(every=1)
    fit(net, (X, y), [diag], epochs=1, batch_size=8, grad_accum=2, shuffle=False)
    assert diag.steps == [1]
    assert diag.step_grad_norms[0][0] == pytest.approx(want, rel=1e-5)


def test_sampling_every_k_steps():
    X, y = positive_data(n=40)
    diag = GradientDiagnostics(every=3)
    fit(relu_net_with_dead_units(), (X, y), [diag], epochs=2, batch_size=4)  # 10 steps/epoch
    assert diag.steps == [1, 4, 7, 10, 13, 16, 19]
    assert len(diag.step_grad_norms) == len(diag.step_update_ratios) == 7


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.c, None


class GradScale(nn.Module):
    """Identity forward; multiplies the gradient passing back through it by ``c``."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        return _ScaleGrad.apply(x, self.c)


def test_vanishing_and_exploding_layers_are_reported_once_in_the_log(tmp_path):
    torch.manual_seed(0)
    # the gradient grows 1e5 times on its way back through GradScale(1e5): layer "2"
    # explodes against the head; it then shrinks 1e9 times: layer "0" vanishes
    net = nn.Sequential(
        nn.Linear(3, 4), GradScale(1e-9), nn.Linear(4, 4), GradScale(1e5), nn.Tanh(),
        nn.Linear(4, 2),
    )  # fmt: skip
    X, y = positive_data()
    diag = GradientDiagnostics(every=1)
    fit(net, (X, y), [diag, MetricsLogger(tmp_path)], epochs=3, lr=0.0)
    kinds = {(w["layer"], w["kind"]) for w in diag.warnings}
    assert kinds == {("0", "vanishing_gradient"), ("2", "exploding_gradient")}
    assert len(diag.warnings) == 2  # entering a state is reported once, not every epoch
    g = diag.epochs[0]["grad_norm"]
    v = next(w for w in diag.warnings if w["layer"] == "0")
    assert v["ratio"] == pytest.approx(g["0"] / max(g["2"], g["5"]))
    e = next(w for w in diag.warnings if w["layer"] == "2")
    assert e["ratio"] == pytest.approx(g["2"] / g["5"]) and e["ratio"] > 1e4
    logged = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    events = [r for r in logged if r["type"] == "event"]
    assert sorted(e["kind"] for e in events) == ["exploding_gradient", "vanishing_gradient"]
    assert all(e["epoch"] == 1 for e in events)


def test_healthy_net_is_not_flagged_and_non_finite_is():
    X, y = positive_data()
    diag = GradientDiagnostics(every=1)
    fit(relu_net_with_dead_units(), (X, y), [diag], epochs=2)
    assert diag.warnings == []
    diag._check({"0": 1.0, "2": float("inf")})
    assert [(w["layer"], w["kind"]) for w in diag.warnings] == [("2", "exploding_gradient")]


class CountHooks(Callback):
    def __init__(self):
        self.during = 0

    def on_step_end(self, state):
        self.during = sum(len(m._forward_hooks) for m in state.model.modules())


def test_hooks_exist_only_while_fitting():
    X, y = positive_data()
    net = relu_net_with_dead_units()
    counter = CountHooks()
    fit(net, (X, y), [GradientDiagnostics(), counter], epochs=1)
    assert counter.during == 1
    assert sum(len(m._forward_hooks) for m in net.modules()) == 0


def test_validation_passes_do_not_count_as_activity():
    # unit 3 fires only on validation inputs; in training it is dead
    X, y = positive_data()
    Xv = torch.full((8, 3), 5.0)
    net = relu_net_with_dead_units()
    with torch.no_grad():
        net[0].bias[3] = -3.0  # x1 < 1.1 in training, 5 in validation
    diag = GradientDiagnostics(every=1)
    t = Trainer(net, torch.optim.SGD(net.parameters(), lr=0.0), nn.CrossEntropyLoss(),
                epochs=1, batch_size=8, callbacks=[diag], seed=0)  # fmt: skip
    t.fit((X, y), (Xv, torch.zeros(8, dtype=torch.long)))
    assert diag.epochs[0]["dead"]["1"] == 0.75


def test_resume_gives_the_same_diagnostics(tmp_path):
    X, y = positive_data(n=48)

    def run(callbacks, epochs, resume=None):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.Sigmoid(),
                            nn.Linear(8, 2))  # fmt: skip
        t = Trainer(net, torch.optim.SGD(net.parameters(), lr=0.5), nn.CrossEntropyLoss(),
                    epochs=epochs, batch_size=8, callbacks=callbacks, seed=0)  # fmt: skip
        t.fit((X, y), resume=resume)

    full = GradientDiagnostics(every=2)
    run([full], 3)
    first = GradientDiagnostics(every=2)
    # checkpoint mid-epoch (step 8 of 6 per epoch), then continue in a fresh object
    run([first, Checkpoint(tmp_path, every_n_steps=8, every_epoch=False)], 2)
    resumed = GradientDiagnostics(every=2)
    run([resumed, Checkpoint(tmp_path / "b")], 3, resume=tmp_path / "step-00000008.pt")
    assert resumed.steps == full.steps
    for a, b in zip(resumed.step_grad_norms, full.step_grad_norms, strict=True):
        assert a == pytest.approx(b, rel=1e-6)
    assert json.dumps(resumed.epochs) == json.dumps(full.epochs)


def test_plots_report_section_and_save(tmp_path):
    X, y = positive_data()
    diag = GradientDiagnostics(every=1)
    fit(relu_net_with_dead_units(), (X, y), [diag], epochs=2)
    section = diag.report_section(tmp_path / "plots")
    names = sorted(p.name for p in section.images)
    assert names == ["activation_heatmap.png", "grad_norm_depth.png", "grad_norm_time.png",
                     "update_ratio.png"]  # fmt: skip
    assert all(p.stat().st_size > 1000 for p in section.images)
    layer_rows = section.tables[0][1]
    assert [r["layer"] for r in layer_rows] == ["0", "2"]
    assert layer_rows[0]["grad norm"] == diag.epochs[-1]["grad_norm"]["0"]
    assert section.tables[1][1][0]["fraction"] == 0.5
    assert "Gradient diagnostics" in render_html("r", [section])
    saved = json.loads(diag.save(tmp_path / "diag.json").read_text())
    assert saved["epochs"][1]["dead"]["1"] == 0.5 and saved["activations"] == {"1": "relu"}
    rows = diag.records()
    assert {"epoch": 2, "layer": "1", "activation": "relu", "dead": 0.5} in rows


def test_named_layers_and_errors():
    X, y = positive_data()
    diag = GradientDiagnostics(layers=["2"])
    fit(relu_net_with_dead_units(), (X, y), [diag], epochs=1)
    assert diag.layer_names == ["2"]
    with pytest.raises(ConfigError, match="no module named 'lin'.*0, 2"):
        fit(relu_net_with_dead_units(), (X, y), [GradientDiagnostics(layers=["lin"])])
    with pytest.raises(ConfigError, match="every must be an int >= 1"):
        GradientDiagnostics(every=0)
    with pytest.raises(ConfigError, match="saturation"):
        GradientDiagnostics(saturation=1.5)
    with pytest.raises(ConfigError, match="vanish .* must be below explode"):
        GradientDiagnostics(vanish=10.0, explode=5.0)
    assert math.isnan(GradientDiagnostics().vanish * float("nan"))
