"""The range test's suggestion against the best fixed lr of a grid, on a real data set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from gradwise.schedules import lr_find

EPOCHS = 3
BATCH = 64


def digits():
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


def make_optimizer(kind: str, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return torch.optim.Adam(model.parameters(), lr=lr)


def final_loss(kind: str, lr: float, X, y, seed: int) -> float:
    """Training loss after EPOCHS epochs at a fixed lr (inf if it diverged)."""
    model = mlp(seed)
    opt = make_optimizer(kind, model, lr)
    order = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS):
        perm = torch.randperm(len(X), generator=order)
        for start in range(0, len(X), BATCH):
            idx = perm[start : start + BATCH]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(X), y).item()
    return loss if math.isfinite(loss) else math.inf


SEEDS = (0, 1, 2)


@pytest.mark.claim
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["sgd", pytest.param("adam", marks=pytest.mark.slow)])
def test_suggestion_is_within_3x_of_best_fixed_lr_on_digits_mlp(kind, seed):
    # The claim, per seed (initial weights, batch order): lr_find's suggestion is
    # within a factor 3 of the best of 13 fixed rates 1.78x apart, by final training
    # loss after 3 epochs. Margin: log(3) - |log(suggestion / best)| >= 0.
    # Measured (SGD) over seeds 0-4 with 1 thread: worst +0.64 (a factor 1.6 apart).
    X, y = digits()
    grid = np.logspace(-3, 0, 13)  # factor 1.78 apart
    losses = [final_loss(kind, lr, X, y, seed=seed) for lr in grid]
    best = float(grid[int(np.argmin(losses))])

    model = mlp(seed=seed)
    torch.manual_seed(seed)
    res = lr_find(
        model,
        torch.nn.functional.cross_entropy,
        (X, y),
        make_optimizer(kind, model, 1.0),
        batch_size=BATCH,
    )
    table = ", ".join(f"{lr:.3g}: {loss:.3f}" for lr, loss in zip(grid, losses))
    margin = math.log(3.0) - abs(math.log(res.suggestion / best))
    assert margin >= 0, (
        f"seed {seed}: suggestion {res.suggestion:.3g} ({res.suggestion_rule}) vs best grid lr "
        f"{best:.3g}; grid (lr: loss after {EPOCHS} epochs) = {table}"
    )
