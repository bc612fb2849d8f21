"""ShrinkBatch: the soft-threshold of many tensors in one call equals torch's softshrink."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradwise.regularization import L1, ElasticNet, _shrink
from gradwise.regularization._shrink import ShrinkBatch

SHAPES = [(3,), (50, 100), (7, 11), (1,), (0,), (300, 200), (4, 4, 4), (2, 3)]


def _tensors(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
    xs[0].copy_(torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype))
    xs[2][0, :4] = torch.tensor([0.0, -0.0, 0.3, -0.3], dtype=dtype)  # at and on the threshold
    return xs


@pytest.fixture(params=[True, False], ids=["numba", "torch"])
def backend(request, monkeypatch):
    if request.param and not _shrink.has_numba():
        pytest.skip("numba (the fast extra) is not installed")
    monkeypatch.setattr(_shrink, "_use_numba", [request.param])
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_softshrink_per_tensor(dtype, backend):
    factors = [1.0, 0.5, 1.0, 2.0, 1.0, 1.5, 0.0, 3.0]
    xs = _tensors(dtype)
    xs.append(torch.randn(30, 40, dtype=dtype).t())  # not contiguous: torch's kernel
    xs.append(torch.randn(20, dtype=torch.float16))  # no numpy kernel for it
    factors += [1.0, 1.0]
    want = [x.clone() for x in xs]
    batch = ShrinkBatch(xs, factors)
    for l1 in (0.3, 0.05, 1e-7):
        batch(l1)
        for i, (w, f) in enumerate(zip(want, factors)):
            want[i] = nn.functional.softshrink(w, l1 * f)
        for x, w in zip(xs, want):
            torch.testing.assert_close(x, w, rtol=0, atol=0, equal_nan=True)
    assert (xs[1] == 0).sum() > 100
    if backend:  # the 7 small contiguous ones went through one numba call
        assert [len(b.tensors) for b in batch._batches] == [7]


def test_one_shared_factor_and_float32_threshold_rounding(backend):
    # lambd is rounded to float32 by torch; values next to the rounded
    # threshold tell the two roundings apart.
    t = 0.1
    t32 = torch.tensor(t, dtype=torch.float32)
    edge = torch.stack([torch.nextafter(t32, torch.tensor(1.0)), t32, torch.nextafter(t32, torch.tensor(0.0))])
    xs = [torch.cat([edge, -edge, torch.randn(10)]) for _ in range(5)]
    want = [nn.functional.softshrink(x, t) for x in xs]
    ShrinkBatch(xs, [1.0] * 5)(t)
    assert all(torch.equal(x, w) for x, w in zip(xs, want))


def test_follows_a_parameter_whose_storage_moves(backend):
    ps = [nn.Parameter(torch.full((10,), 2.0)) for _ in range(6)]
    batch = ShrinkBatch(ps, [1.0] * 6)
    with torch.no_grad():
        batch(0.5)
        assert all(torch.equal(p, torch.full((10,), 1.5)) for p in ps)
        old = ps[3].data
        ps[3].data = torch.full((10,), 4.0)  # what model.to(dtype) does
        batch(0.5)
    assert torch.equal(ps[3].detach(), torch.full((10,), 3.5))
    assert torch.equal(old, torch.full((10,), 1.5))  # the old memory is left alone
    assert all(torch.equal(p, torch.full((10,), 1.0)) for i, p in enumerate(ps) if i != 3)


@pytest.mark.parametrize("pen", [L1(0.2), ElasticNet(0.3, 0.5), ElasticNet(0.3, 0.0)], ids=repr)
def test_prox_plan_equals_prox_many(pen, backend):
    xs = _tensors(torch.float32, seed=1)[1:]
    factors = [1.0, 0.5, 2.0, 1.0, 1.0, 1.5, 0.0]
    ys = [x.clone() for x in xs]
    plan = pen.prox_plan(xs, factors)
    for step in (0.7, 0.1):
        plan(step)
        pen.prox_many(ys, step, factors)
    assert all(torch.equal(x, y) for x, y in zip(xs, ys))


def test_a_numba_that_does_not_import_leaves_torchs_kernel(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_kernel(name, *args, **kwargs):
        if name.endswith("_shrink_numba"):
            raise ImportError("numba: this NumPy is not supported")
        return real_import(name, *args, **kwargs)

    _shrink._kernel.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_kernel)
    monkeypatch.setattr(_shrink, "_use_numba", [True])
    try:
        xs = [torch.full((5,), 2.0) for _ in range(6)]
        batch = ShrinkBatch(xs, [1.0] * 6)
        batch(0.5)
        assert batch._batches == [] and all(torch.equal(x, torch.full((5,), 1.5)) for x in xs)
    finally:
        monkeypatch.undo()
        _shrink._kernel.cache_clear()
