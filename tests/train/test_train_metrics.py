"""Streaming metrics against scikit-learn on the same predictions."""

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from gradwise.errors import ConfigError
from gradwise.nn import binary, multiclass, multilabel, regression
from gradwise.train.metrics import METRICS, Metric, get_metric


def stream(metric, output, target, batch=7):
    """Feed the data in uneven batches, as a trainer would."""
    metric.reset()
    for i in range(0, len(output), batch):
        metric.update(output[i : i + batch], target[i : i + batch])
    return metric.compute()


def test_accuracy_multiclass_matches_sklearn():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(50, 4, generator=g)
    y = torch.randint(0, 4, (50,), generator=g)
    head = multiclass(4)
    got = stream(get_metric("accuracy", head), out, head.prepare_target(y))
    assert got == pytest.approx(skm.accuracy_score(y.numpy(), out.argmax(1).numpy()), abs=1e-12)


def test_accuracy_binary_head_uses_logit_sign():
    g = torch.Generator().manual_seed(1)
    out = torch.randn(40, 1, generator=g)
    y = torch.randint(0, 2, (40,), generator=g)
    head = binary()
    # The head keeps targets as (N, 1) floats; the metric compares them to (N,) labels.
    got = stream(get_metric("accuracy", head), out, head.prepare_target(y))
    want = skm.accuracy_score(y.numpy(), (out.reshape(-1) > 0).long().numpy())
    assert got == pytest.approx(want, abs=1e-12)


def test_accuracy_multilabel_is_subset_accuracy():
    g = torch.Generator().manual_seed(2)
    out = torch.randn(60, 3, generator=g)
    y = torch.randint(0, 2, (60, 3), generator=g)
    head = multilabel(3)
    got = stream(get_metric("accuracy", head), out, head.prepare_target(y))
    want = skm.accuracy_score(y.numpy(), (out > 0).long().numpy())
    assert got == pytest.approx(want, abs=1e-12)
    assert 0 < got < 1


def test_accuracy_without_head_defaults():
    acc = get_metric("accuracy")
    acc.update(torch.tensor([[0.3], [-1.0], [2.0]]), torch.tensor([1, 1, 1]))
    assert acc.compute() == pytest.approx(2 / 3)
    acc.reset()
    acc.update(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]))
    assert acc.compute() == 0.5


@pytest.mark.parametrize("k", [1, 3])
def test_regression_metrics_match_sklearn(k):
    g = torch.Generator().manual_seed(3)
    y = torch.randn(83, k, generator=g) * 5 + 100  # large mean: a naive SS_tot would cancel
    out = y + torch.randn(83, k, generator=g)
    head = regression(k)
    yt = head.prepare_target(y.squeeze(1) if k == 1 else y)
    pred = out.numpy().astype(np.float64)
    yy = y.numpy().astype(np.float64)
    for name, ref in [
        ("mse", skm.mean_squared_error),
        ("mae", skm.mean_absolute_error),
        ("r2", skm.r2_score),
    ]:
        got = stream(get_metric(name, head), out, yt)
        assert got == pytest.approx(ref(yy, pred), rel=1e-6), name


def test_r2_constant_target_follows_sklearn():
    y = torch.full((10, 1), 2.0)
    r2 = get_metric("r2")
    assert stream(r2, y.clone(), y) == skm.r2_score(y.numpy(), y.numpy()) == 1.0
    assert stream(r2, y + 1, y) == skm.r2_score(y.numpy(), (y + 1).numpy()) == 0.0


def test_metric_state_dict_round_trip_continues_the_stream():
    g = torch.Generator().manual_seed(4)
    out, y = torch.randn(30, 2, generator=g), torch.randn(30, 2, generator=g)
    a = get_metric("r2")
    a.update(out[:10], y[:10])
    b = get_metric("r2")
    b.load_state_dict(a.state_dict())
    for m in (a, b):
        m.update(out[10:], y[10:])
    assert a.compute() == b.compute() == pytest.approx(skm.r2_score(y.numpy(), out.numpy()))


def test_get_metric_errors_and_protocol():
    with pytest.raises(ConfigError, match="unknown metric 'acuracy'.*did you mean 'accuracy'"):
        get_metric("acuracy")
    with pytest.raises(ConfigError, match="metric name or a Metric"):
        get_metric(3)
    m = get_metric("mse")
    assert isinstance(m, Metric) and get_metric(m) is m
    assert {n: METRICS[n].higher_is_better for n in METRICS} == {
        "accuracy": True,
        "mse": False,
        "mae": False,
        "r2": True,
    }
    assert np.isnan(get_metric("accuracy").compute())
