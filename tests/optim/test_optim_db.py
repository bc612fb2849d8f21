"""Every alias follows torch.optim on every configuration of PyTorch's own ``optim_db``.

``optim_db`` (torch/testing/_internal/common_optimizers.py) lists the
configurations torch's optimizer tests run per algorithm: defaults, each
option, ``maximize``, a Tensor ``lr``. Each runs 40 steps on a small MLP with
torch's class and with our alias (``decay_mask="all"``, torch's decay
everywhere). float64 must agree to 1e-9; float32 to round-off, measured as how
far torch's own trajectory moves when every initial weight moves by one ulp.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradwise import optim as go

# torch class name -> our alias name
ALIASES = {
    "SGD": "sgd",
    "Adam": "adam",
    "AdamW": "adamw",
    "RMSprop": "rmsprop",
    "Adagrad": "adagrad",
    "NAdam": "nadam",
    "RAdam": "radam",
    "Adamax": "adamax",
    "Adadelta": "adadelta",
    "ASGD": "asgd",
    "Rprop": "rprop",
    "Adafactor": "adafactor",
    "Muon": "muon",
    "SparseAdam": "sparse_adam",
    "LBFGS": "lbfgs",
}
# Muon takes matrices only; SparseAdam sparse gradients only.
MODEL = {"Muon": "matrices", "SparseAdam": "embedding"}
# One LBFGS step runs up to 20 iterations and more closure calls.
STEPS_OF = {"LBFGS": 4}
STEPS = 40


class _Bag(nn.Module):
    # A sparse embedding bag: each step's batch touches some rows only.
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 4, sparse=True)

    def forward(self, idx):
        return self.emb(idx).sum(1, keepdim=True).tanh().sum(-1)


def _run(make_opt, dtype, perturb=False, model="mlp", steps=STEPS):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 5, generator=g, dtype=dtype)
    y = torch.randn(64, 1, generator=g, dtype=dtype)
    torch.manual_seed(1)
    if model == "embedding":
        net = _Bag().to(dtype)
        batches = [torch.randint(0, 30, (8, 3), generator=g) for _ in range(4)]
        ys = [torch.randn(8, 1, generator=g, dtype=dtype) for _ in range(4)]
    else:
        bias = model != "matrices"
        net = nn.Sequential(nn.Linear(5, 16, bias=bias), nn.Tanh(), nn.Linear(16, 1, bias=bias)).to(dtype)
        batches, ys = [X], [y]
    if perturb:
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.nextafter(p, torch.full_like(p, 10.0)))
    opt = make_opt(net)
    for i in range(steps):
        xb, yb = batches[i % len(batches)], ys[i % len(ys)]

        def closure(xb=xb, yb=yb):
            opt.zero_grad()
            loss = nn.functional.mse_loss(net(xb), yb)
            loss.backward()
            return loss
        opt.step(closure)
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def _torch(name, kw):
    cls = getattr(torch.optim, name)
    return lambda m: cls(m.parameters(), **_fresh(kw))


def _ours(name, kw):
    alias = go.ALIASES[ALIASES[name]]
    extra = {} if name in ("SparseAdam", "Muon", "LBFGS") else {"decay_mask": "all"}
    return lambda m: alias(m.parameters(), **_fresh(kw), **extra)


def _fresh(kw):
    # A Tensor lr is shared with the optimizer (and may be changed in place).
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kw.items()}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", sorted(ALIASES))
def test_every_optim_db_config_follows_torch(name, dtype, optim_db):
    rows = optim_db(name, dtype)
    assert rows, f"optim_db has no configuration for {name}"
    model = MODEL.get(name, "mlp")
    steps = STEPS_OF.get(name, STEPS)
    start = _run(_torch(name, {}), dtype, model=model, steps=0)
    for desc, kw in rows:
        ref = _run(_torch(name, kw), dtype, model=model, steps=steps)
        ours = _run(_ours(name, kw), dtype, model=model, steps=steps)
        err = (ours - ref).abs().max().item()
        if dtype == torch.float64 and not isinstance(kw.get("lr"), torch.Tensor):
            tol = 1e-9
        elif dtype == torch.float64:
            # torch does its scalar arithmetic with a Tensor lr in the Tensor's
            # float32 (Muon's lr * wd, for one); ours in the parameter's dtype.
            tol = 1e-6
        else:
            sens = _run(_torch(name, kw), dtype, perturb=True, model=model, steps=steps)
            sens = (sens - ref).abs().max().item()
            tol = max(2e-6, 4 * sens)
        assert err <= tol, f"{name} [{desc}] {kw}: max |diff| {err:.3g} > {tol:.3g}"
        assert (ref - start).abs().max().item() > 1e-5, f"{name} [{desc}]: torch did not move"
