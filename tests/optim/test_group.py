"""Schedule-Free AdamW and SGD, and ASGD, step a group at a time (gradwise.optim._group).

Each case steps two copies of the same parameters: the alias on its default
path and the same chain on the per-parameter reference path
(``foreach=False``). They must agree to round-off, keep the same state, and
fall back to the reference path where the group path does not fit. (Against
the schedulefree package: tests/optim/test_modern.py, on the default path.)
"""

from __future__ import annotations

import copy

import pytest
import torch

from gradwise import optim as go
from gradwise.optim import _group
from gradwise.optim._schedule_free_optimizer import ScheduleFreeOptimizer
from gradwise.regularization import L1

CASES = {
    "adamw": lambda ps: go.schedule_free_adamw(ps, lr=5e-2),
    "adamw-wd-warmup-r": lambda ps: go.schedule_free_adamw(ps, lr=5e-2, weight_decay=0.1, warmup_steps=3, r=0.5),
    "adamw-maximize-prox": lambda ps: go.schedule_free_adamw(ps, lr=5e-2, maximize=True, prox=L1(0.01)),
    "sgd": lambda ps: go.schedule_free_sgd(ps, lr=0.2),
    "sgd-wd-warmup": lambda ps: go.schedule_free_sgd(ps, lr=0.2, momentum=0.8, weight_decay=0.05, warmup_steps=4),
    "sgd-maximize-prox": lambda ps: go.schedule_free_sgd(ps, lr=0.2, maximize=True, prox=L1(0.01)),
}


def _reference(make, ps):
    ours = make(ps)
    return ScheduleFreeOptimizer(ps, ours.transform, foreach=False,
                                 maximize=ours.param_groups[0]["maximize"])


def _params(dtype):
    g = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in [(5, 4), (4,), (3, 2, 2)]]


def _run(opt, ps, steps=10, skip=None):
    for t in range(steps):
        for i, p in enumerate(ps):
            g = torch.Generator().manual_seed(100 * t + i)
            p.grad = None if skip is not None and skip(t, i) else torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()
    return [p.detach().clone() for p in ps]


def _assert_close(a, b, dtype):
    tol = 1e-5 if dtype is torch.float32 else 1e-12
    err = max((x - y).abs().max().item() for x, y in zip(a, b))
    assert err < tol, f"max |diff| {err:.3g}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_group_path_equals_the_reference_path(case, dtype):
    make = CASES[case]
    ps_g, ps_r = _params(dtype), _params(dtype)
    opt = make(ps_g)
    got = _run(opt, ps_g)
    ref_opt = _reference(make, ps_r)
    ref = _run(ref_opt, ps_r)
    assert isinstance(opt._fast_cache[id(opt.param_groups[0])], _group.GroupCache)
    assert ref_opt._group is None
    assert (ref[0] - _params(dtype)[0]).abs().max().item() > 1e-2  # it moved
    _assert_close(got, ref, dtype)
    # The same state, under the same keys, counters as plain numbers and 0-dim tensors.
    for p, q in zip(ps_g, ps_r):
        a, b = opt.state[p], ref_opt.state[q]
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], torch.Tensor):
                assert a[k].shape == b[k].shape
                _assert_close([a[k]], [b[k]], dtype)
            else:
                assert a[k] == pytest.approx(b[k], rel=1e-12)
    opt.eval()
    ref_opt.eval()
    _assert_close(ps_g, ps_r, dtype)


@pytest.mark.parametrize("name", ["schedule_free_adamw", "schedule_free_sgd"])
def test_state_dict_moves_between_the_group_and_reference_paths(name):
    def make(ps):
        return go.ALIASES[name](ps, lr=5e-2, weight_decay=0.1)

    ps_a, ps_b = _params(torch.float64), _params(torch.float64)
    straight = make(ps_a)
    _run(straight, ps_a, steps=12)
    first = make(ps_b)
    _run(first, ps_b, steps=6)
    saved = first.state_dict()
    ps_c = [torch.nn.Parameter(p.detach().clone()) for p in ps_b]
    resumed = _reference(make, ps_c)  # reference path after the group path ...
    resumed.load_state_dict(saved)
    for t in range(6, 12):
        for i, p in enumerate(ps_c):
            p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(100 * t + i), dtype=p.dtype)
        if t == 9:  # ... and the group path again after the reference path
            resumed._group = _group.match(resumed.leaves)
        resumed.step()
    assert isinstance(resumed._fast_cache[id(resumed.param_groups[0])], _group.GroupCache)
    _assert_close(ps_c, ps_a, torch.float64)


def test_parameters_with_different_counters_fall_back_to_the_reference_path():
    # The bias has no gradient on step 2: its counters lag, so each parameter needs its own step.
    def skip(t, i):
        return t == 2 and i == 1

    make = CASES["adamw-wd-warmup-r"]
    ps_g, ps_r = _params(torch.float64), _params(torch.float64)
    opt = make(ps_g)
    got = _run(opt, ps_g, skip=skip)
    ref = _run(_reference(make, ps_r), ps_r, skip=skip)
    _assert_close(got, ref, torch.float64)
    assert id(opt.param_groups[0]) not in opt._fast_cache  # the reference path ran last
    assert [opt.state[p]["sf_step"] for p in ps_g] == [10, 9, 10]


@pytest.mark.parametrize("name", ["schedule_free_adamw", "schedule_free_sgd"])
def test_a_decay_mask_that_leaves_parameters_out_takes_the_reference_path(name):
    def make(ps):
        return go.ALIASES[name](ps, lr=5e-2, weight_decay=0.1, decay_mask="auto")  # no decay on the 1-D bias

    ps_g, ps_r = _params(torch.float64), _params(torch.float64)
    opt = make(ps_g)
    got = _run(opt, ps_g)
    ref = _run(_reference(make, ps_r), ps_r)
    _assert_close(got, ref, torch.float64)
    assert id(opt.param_groups[0]) not in opt._fast_cache
    # Without decay the mask does not matter: the group path runs.
    opt.param_groups[0]["weight_decay"] = 0.0
    _run(opt, ps_g, steps=1)
    assert isinstance(opt._fast_cache[id(opt.param_groups[0])], _group.GroupCache)


def test_complex_parameters_and_tensor_lr_take_the_reference_path():
    w = torch.nn.Parameter(torch.zeros(2, dtype=torch.complex128))
    opt = go.schedule_free_adamw([w], lr=0.1)
    w.grad = torch.tensor([1 + 1j, -2j], dtype=torch.complex128)
    opt.step()
    assert id(opt.param_groups[0]) not in opt._fast_cache
    ps = _params(torch.float64)
    opt = go.schedule_free_sgd(ps, lr=torch.tensor(0.2))
    _run(opt, ps, steps=2)
    assert id(opt.param_groups[0]) not in opt._fast_cache


ASGD = {
    "plain": dict(lr=0.05),
    "averaging-wd-maximize": dict(lr=0.05, t0=3, weight_decay=0.1, lambd=0.01, alpha=0.6, maximize=True),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", sorted(ASGD))
def test_asgd_group_path_equals_torch_exactly_and_swaps_state(case, dtype):
    kw = ASGD[case]
    ps_g, ps_t = _params(dtype), _params(dtype)
    opt = go.asgd(ps_g, decay_mask="all", **kw)
    torch_opt = torch.optim.ASGD(ps_t, foreach=False, **kw)
    got, ref = _run(opt, ps_g), _run(torch_opt, ps_t)
    assert isinstance(opt._fast_cache[id(opt.param_groups[0])], _group.GroupCache)
    assert (ref[0] - _params(dtype)[0]).abs().max().item() > 1e-2
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for p, q in zip(ps_g, ps_t):
        for k in ("step", "eta", "mu", "ax"):
            torch.testing.assert_close(opt.state[p][k], torch_opt.state[q][k], rtol=0, atol=0)
    # Our state_dict continues in torch's ASGD, step for step.
    ps_c = [torch.nn.Parameter(p.detach().clone()) for p in ps_g]
    resumed = torch.optim.ASGD(ps_c, foreach=False, **kw)
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))  # torch keeps same-dtype tensors as given
    for opt_, ps in ((resumed, ps_c), (opt, ps_g)):
        for i, p in enumerate(ps):
            p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(7 + i), dtype=dtype)
        opt_.step()
    for a, b in zip(ps_g, ps_c):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_asgd_with_prox_equals_the_reference_path():
    def make(ps, **k):
        return go.asgd(ps, lr=0.05, t0=2, prox=L1(0.01), **k)

    ps_g, ps_r = _params(torch.float64), _params(torch.float64)
    opt = make(ps_g)
    got = _run(opt, ps_g)
    ref = _run(make(ps_r, foreach=False), ps_r)
    assert isinstance(opt._fast_cache[id(opt.param_groups[0])], _group.GroupCache)
    _assert_close(got, ref, torch.float64)


def _embedding_run(make, dtype, steps=10):
    # Two sparse embeddings; the second one sits out step 3, so its counter lags.
    torch.manual_seed(0)
    embs = [torch.nn.Embedding(30, 6, sparse=True).to(dtype), torch.nn.Embedding(12, 3, sparse=True).to(dtype)]
    ps = [e.weight for e in embs]
    opt = make(ps)
    for t in range(steps):
        opt.zero_grad()
        g = torch.Generator().manual_seed(t)
        loss = sum((e(torch.randint(0, e.num_embeddings, (7,), generator=g)) ** 2).sum()
                   for i, e in enumerate(embs) if not (t == 3 and i == 1))
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in ps], opt


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("maximize", [False, True])
def test_sparse_adam_group_path_equals_torch(dtype, maximize):
    got, opt = _embedding_run(lambda ps: go.sparse_adam(ps, lr=0.05, betas=(0.8, 0.99), maximize=maximize), dtype)
    ref, torch_opt = _embedding_run(lambda ps: torch.optim.SparseAdam(ps, lr=0.05, betas=(0.8, 0.99),
                                                                      maximize=maximize), dtype)
    assert isinstance(opt._fast_cache[id(opt.param_groups[0])], _group.GroupCache)
    assert [opt.state[p]["step"] for p in opt.param_groups[0]["params"]] == [10, 9]
    tol = 1e-6 if dtype is torch.float32 else 1e-14
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=tol)
    for p, q in zip(opt.param_groups[0]["params"], torch_opt.param_groups[0]["params"]):
        for k in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(opt.state[p][k], torch_opt.state[q][k], rtol=0, atol=tol)


def test_sparse_adam_with_prox_equals_the_reference_path():
    def make(ps, **k):
        return go.sparse_adam(ps, lr=0.05, prox=L1(0.01))

    got, opt = _embedding_run(make, torch.float64)
    assert isinstance(opt._fast_cache[id(opt.param_groups[0])], _group.GroupCache)
    ours_ref, ref_opt = _embedding_run(
        lambda ps: go.Optimizer(ps, make(ps).transform, fused=False, foreach=False), torch.float64)
    assert ref_opt._group is None
    _assert_close(got, ours_ref, torch.float64)


ADAFACTOR = {
    "plain": (dict(lr=0.05), "all"),
    "wd-d-maximize": (dict(lr=0.05, weight_decay=0.1, d=1.5, maximize=True, beta2_decay=-0.6), "all"),
    "wd-masked": (dict(lr=0.05, weight_decay=0.1), "auto"),  # no decay on the 1-D parameter
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", sorted(ADAFACTOR))
def test_adafactor_group_path_equals_torch_exactly(case, dtype):
    kw, mask = ADAFACTOR[case]
    ps_g, ps_t = _params(dtype), _params(dtype)
    opt = go.adafactor(ps_g, decay_mask=mask, **kw)
    groups = ([dict(params=[ps_t[0], ps_t[2]]), dict(params=[ps_t[1]], weight_decay=0.0)]
              if mask == "auto" else ps_t)
    torch_opt = torch.optim.Adafactor(groups, foreach=False, **kw)
    got, ref = _run(opt, ps_g), _run(torch_opt, ps_t)
    assert isinstance(opt._fast_cache[id(opt.param_groups[0])], _group.GroupCache)
    assert (ref[0] - _params(dtype)[0]).abs().max().item() > 1e-2
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for p, q in zip(ps_g, ps_t):
        for k, v in torch_opt.state[q].items():
            if v is not None:
                torch.testing.assert_close(opt.state[p][k], v, rtol=0, atol=0)


class _ForeachCache(dict):
    # The optimizer's cache dict with every group cache switched to the
    # multi-tensor (CUDA) form, so that form is checked on CPU as well.
    def __setitem__(self, key, cache):
        super().__setitem__(key, cache._replace(foreach=True) if isinstance(cache, _group.GroupCache) else cache)


@pytest.mark.parametrize("case", ["adamw-wd-warmup-r", "adamw-maximize-prox", "sgd", "sgd-wd-warmup", "asgd"])
def test_the_multi_tensor_form_equals_the_reference_path(case):
    def make(ps):
        if case == "asgd":
            return go.asgd(ps, lr=0.05, t0=3, weight_decay=0.1, lambd=0.01, decay_mask="all")
        return CASES[case](ps)

    ps_g, ps_r = _params(torch.float64), _params(torch.float64)
    opt = make(ps_g)
    opt._fast_cache = _ForeachCache()
    got = _run(opt, ps_g)
    assert opt._fast_cache[id(opt.param_groups[0])].foreach
    ref_opt = make(ps_r)
    ref_opt._group = None
    _assert_close(got, _run(ref_opt, ps_r), torch.float64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("case", ["adamw-wd-warmup-r", "adamw-maximize-prox", "sgd-wd-warmup", "asgd"])
def test_on_cuda_the_group_path_takes_the_multi_tensor_form_and_equals_the_reference(case):
    def make(ps):
        if case == "asgd":
            return go.asgd(ps, lr=0.05, t0=3, weight_decay=0.1, lambd=0.01, decay_mask="all")
        return CASES[case](ps)

    def on_cuda(ps):
        return [torch.nn.Parameter(p.detach().cuda()) for p in ps]

    def run(opt, ps, steps=10):
        for t in range(steps):
            for i, p in enumerate(ps):
                g = torch.Generator().manual_seed(100 * t + i)
                p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype).cuda()
            opt.step()
        return [p.detach().cpu() for p in ps]

    ps_g, ps_r = on_cuda(_params(torch.float64)), on_cuda(_params(torch.float64))
    opt = make(ps_g)
    got = run(opt, ps_g)
    assert opt._fast_cache[id(opt.param_groups[0])].foreach
    ref_opt = make(ps_r)
    ref_opt._group = None
    _assert_close(got, run(ref_opt, ps_r), torch.float64)
