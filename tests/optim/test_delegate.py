"""The chains that are exactly a torch.optim algorithm run on torch's functional form.

Each case steps three copies of the same parameters: the gradwise alias on
its default path (torch's multi-tensor functional), the same alias on the
reference path (``fused=False``), and torch's own class with
``foreach=True``. The default path must equal torch exactly; the reference
path must agree to round-off.
"""

from __future__ import annotations

import pytest
import torch

from gradwise import optim as go
from gradwise.regularization import L1

T = torch.optim

CASES = {
    "rmsprop": (lambda ps, **k: go.rmsprop(ps, lr=1e-2, decay_mask="all", **k),
                lambda ps: T.RMSprop(ps, lr=1e-2, foreach=True)),
    "rmsprop-momentum-centered-wd": (
        lambda ps, **k: go.rmsprop(ps, lr=1e-2, momentum=0.9, centered=True, weight_decay=0.1,
                                   decay_mask="all", **k),
        lambda ps: T.RMSprop(ps, lr=1e-2, momentum=0.9, centered=True, weight_decay=0.1, foreach=True)),
    "adamax-wd-maximize": (
        lambda ps, **k: go.adamax(ps, lr=1e-2, weight_decay=0.1, decay_mask="all", maximize=True, **k),
        lambda ps: T.Adamax(ps, lr=1e-2, weight_decay=0.1, maximize=True, foreach=True)),
    "adadelta": (lambda ps, **k: go.adadelta(ps, lr=0.5, weight_decay=0.05, decay_mask="all", **k),
                 lambda ps: T.Adadelta(ps, lr=0.5, weight_decay=0.05, foreach=True)),
    "nadam": (lambda ps, **k: go.nadam(ps, lr=1e-2, weight_decay=0.1, decay_mask="all", **k),
              lambda ps: T.NAdam(ps, lr=1e-2, weight_decay=0.1, foreach=True)),
    "nadam-decoupled": (
        lambda ps, **k: go.nadam(ps, lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True,
                                 decay_mask="all", **k),
        lambda ps: T.NAdam(ps, lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, foreach=True)),
    "radam-decoupled": (
        lambda ps, **k: go.radam(ps, lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True,
                                 decay_mask="all", **k),
        lambda ps: T.RAdam(ps, lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, foreach=True)),
}


def _params(dtype: torch.dtype) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in [(5, 4), (4,), (3, 2, 2)]]


def _run(opt: torch.optim.Optimizer, ps: list[torch.nn.Parameter], steps: int = 8) -> list[torch.Tensor]:
    for t in range(steps):
        for i, p in enumerate(ps):
            g = torch.Generator().manual_seed(100 * t + i)
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        opt.step()
    return [p.detach().clone() for p in ps]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_default_path_is_torch_and_reference_path_agrees(case: str, dtype: torch.dtype) -> None:
    ours_maker, torch_maker = CASES[case]
    ps_fast, ps_ref, ps_torch = _params(dtype), _params(dtype), _params(dtype)
    fast = ours_maker(ps_fast)
    assert fast._delegate is not None, "the chain should run on torch's functional form"
    ref = ours_maker(ps_ref, foreach=False)
    want = _run(torch_maker(ps_torch), ps_torch)
    got = _run(fast, ps_fast)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert ref._delegate is None
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for a, b in zip(_run(ref, ps_ref), want):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    # The state under torch's keys, so a state_dict still swaps with torch's.
    theirs = torch_maker(ps_torch)
    _run(theirs, ps_torch, steps=1)
    assert set(fast.state[ps_fast[0]]) == set(theirs.state[ps_torch[0]])


def test_reference_path_when_the_tensors_do_not_fit() -> None:
    # A Tensor lr and a masked non-zero decay leave the functional form aside; results still right.
    ps = _params(torch.float64)
    opt = go.adamax(ps, lr=torch.tensor(1e-2, dtype=torch.float64), weight_decay=0.1, decay_mask="all")
    ps_torch = _params(torch.float64)
    want = _run(T.Adamax(ps_torch, lr=torch.tensor(1e-2, dtype=torch.float64), weight_decay=0.1), ps_torch)
    for a, b in zip(_run(opt, ps), want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_prox_follows_the_functional_step() -> None:
    ps, ps_ref = _params(torch.float32), _params(torch.float32)
    got = _run(go.adamax(ps, lr=0.1, prox=L1(0.5)), ps)
    ref = go.adamax(ps_ref, lr=0.1, prox=L1(0.5), foreach=False)
    want = _run(ref, ps_ref)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert sum(int((p == 0).sum()) for p in got) > 0
