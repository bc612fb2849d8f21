"""Trainer overhead: one epoch of an MNIST-size MLP, gradwise vs a hand loop vs Lightning.

Model 784-256-256-10 (ReLU), 60,000 synthetic examples, batch 64, SGD with
momentum, cross-entropy. Every variant trains a fresh copy of the same initial
weights for one epoch; the timed region is the whole ``fit`` call (or the
whole loop for the hand-written ones). Variants:

* ``hand/loader``   DataLoader(TensorDataset, shuffle=True), zero_grad /
  forward / loss / backward / step, ``loss.item()`` accumulated per batch.
* ``hand/tensor``   the same loop over ``randperm`` + ``index_select`` slices.
* ``ours/loader``   ``Trainer.fit(DataLoader)``, no callbacks.
* ``ours/loader+bar`` the same with ``ProgressBar`` drawing on a terminal console.
* ``ours/tensor``   ``Trainer.fit((X, y))``: the fast path that slices tensors.
* ``ours/tensor+bar``
* ``lightning``     ``pytorch_lightning.Trainer`` with logger, checkpointing,
  progress bar and model summary off, over the same DataLoader.

Runs are repeated in alternating order; the table shows median and min
seconds per epoch; ratios are given as ratio of medians and as the median of
per-repeat ratios. Usage::

    python benchmarks/bench_trainer.py            # 60k examples, 5 repeats
    python benchmarks/bench_trainer.py --quick    # 8k examples, 3 repeats
    python benchmarks/bench_trainer.py --device cuda
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import time
import warnings

import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gradwise.train import ProgressBar, Trainer

BATCH, LR = 64, 0.01


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    )


def optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)


def loader(X, y, seed):
    return DataLoader(
        TensorDataset(X, y),
        batch_size=BATCH,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )


DEVICE = torch.device("cpu")


def hand_loader(model, X, y, seed):
    opt, loss_fn = optimizer(model), nn.CrossEntropyLoss()
    model.train()
    total = 0.0
    for xb, yb in loader(X, y, seed):
        xb, yb = xb.to(DEVICE, non_blocking=True), yb.to(DEVICE, non_blocking=True)
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        total += loss.item()
    return total


def hand_tensor(model, X, y, seed):
    opt, loss_fn = optimizer(model), nn.CrossEntropyLoss()
    model.train()
    total = 0.0
    X, y = X.to(DEVICE), y.to(DEVICE)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed)).to(DEVICE)
    for i in range(0, len(X), BATCH):
        idx = perm[i : i + BATCH]
        opt.zero_grad()
        loss = loss_fn(model(X.index_select(0, idx)), y.index_select(0, idx))
        loss.backward()
        opt.step()
        total += loss.item()
    return total


def ours(model, X, y, seed, *, tensor: bool, bar: bool):
    callbacks = []
    if bar:
        console = Console(file=io.StringIO(), force_terminal=True, width=120)
        callbacks.append(ProgressBar(console=console))
    t = Trainer(
        model,
        optimizer(model),
        nn.CrossEntropyLoss(),
        batch_size=BATCH,
        seed=seed,
        callbacks=callbacks,
        device=DEVICE,
    )
    hist = t.fit((X, y) if tensor else loader(X, y, seed))
    return hist[0]["train_loss"]


def lightning_runner():
    import pytorch_lightning as pl

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    class Module(pl.LightningModule):
        def __init__(self, model):
            super().__init__()
            self.model, self.loss_fn = model, nn.CrossEntropyLoss()

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            return self.loss_fn(self.model(xb), yb)

        def configure_optimizers(self):
            return optimizer(self.model)

    def run(model, X, y, seed):
        trainer = pl.Trainer(
            max_epochs=1,
            accelerator="gpu" if DEVICE.type == "cuda" else "cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(Module(model), loader(X, y, seed))

    return run, pl.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8k examples, 3 repeats")
    parser.add_argument("--n", type=int, default=None, help="number of examples")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (model and batches there)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    n = args.n or (8_000 if args.quick else 60_000)
    repeats = args.repeats or (3 if args.quick else 5)
    torch.set_num_threads(args.threads)
    # the same count for gradwise's Trainer, whose own rule would pick 1 thread for a small model
    os.environ["GRADWISE_THREADS"] = str(args.threads)

    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 784, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(0)
    init = make_model().state_dict()

    variants = {
        "hand/loader": hand_loader,
        "hand/tensor": hand_tensor,
        "ours/loader": lambda m, X, y, s: ours(m, X, y, s, tensor=False, bar=False),
        "ours/loader+bar": lambda m, X, y, s: ours(m, X, y, s, tensor=False, bar=True),
        "ours/tensor": lambda m, X, y, s: ours(m, X, y, s, tensor=True, bar=False),
        "ours/tensor+bar": lambda m, X, y, s: ours(m, X, y, s, tensor=True, bar=True),
    }
    pl_version = None
    try:
        variants["lightning"], pl_version = lightning_runner()
    except ImportError:
        print("pytorch_lightning is not installed: skipping it")

    def sync():
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()

    def once(fn):
        model = make_model().to(DEVICE)
        model.load_state_dict(init)
        sync()
        t0 = time.perf_counter()
        fn(model, X, y, 1)
        sync()
        return time.perf_counter() - t0

    for fn in variants.values():  # warm-up: first-call costs (imports, allocator) are not overhead
        fn(make_model().to(DEVICE), X[: BATCH * 4], y[: BATCH * 4], 1)

    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(once(variants[name]))

    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"one epoch, {n} examples, batch {BATCH}, MLP 784-256-256-10, SGD; "
        f"torch {torch.__version__}, device {DEVICE}, {args.threads} threads, {repeats} repeats"
        + (f", pytorch_lightning {pl_version}" if pl_version else "")
    )
    print(f"{'variant':<18}{'median s':>10}{'min s':>10}")
    for k in variants:
        print(f"{k:<18}{med[k]:>10.3f}{min(times[k]):>10.3f}")
    print("ratios: of the medians | median of per-repeat ratios (paired, less noisy)")
    pairs = [
        ("ours/loader", "hand/loader"),
        ("ours/loader+bar", "hand/loader"),
        ("ours/tensor", "hand/tensor"),
        ("ours/tensor", "hand/loader"),
        ("ours/tensor+bar", "hand/loader"),
    ]
    if pl_version:
        pairs += [("ours/loader", "lightning"), ("ours/loader+bar", "lightning")]
        pairs += [("ours/tensor", "lightning")]
    for a, b in pairs:
        paired = statistics.median(x / z for x, z in zip(times[a], times[b]))
        print(f"  {a:<16} / {b:<12} = {med[a] / med[b]:.3f} | {paired:.3f}")


if __name__ == "__main__":
    main()
