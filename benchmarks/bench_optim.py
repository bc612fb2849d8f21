"""Step time of gradwise.optim against torch.optim, on CPU with 2 threads.

Prints, from one run:

* our ``adamw`` step / the fastest torch AdamW (for-loop, foreach, fused),
* our ``sgd`` with momentum / torch SGD (its default path, and its fastest),
* our ``adamw`` with ``prox=L1`` / our plain ``adamw``,
* our per-tensor reference path / our default (what the fused dispatch buys),

on 10M parameters in 4 tensors and on 1M parameters in 200 tensors. Every
optimizer gets its own copy of the same parameters and gradients; the
variants are timed interleaved, several steps per sample, and the median per
step is kept, so that the ratios come from the same machine state.

    python benchmarks/bench_optim.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

from gradwise import optim as go
from gradwise.regularization import L1

SHAPES = {
    "10M params / 4 tensors": [(2500, 1000)] * 4,
    "1M params / 200 tensors": [(50, 100)] * 200,
}


def _params(shapes: list[tuple[int, int]], seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in shapes:
        p = torch.randn(s, generator=g).requires_grad_()
        p.grad = torch.randn(s, generator=g) * 1e-2
        out.append(p)
    return out


def _time(variants: dict[str, torch.optim.Optimizer], repeats: int, steps: int) -> dict[str, float]:
    """Median seconds per step of each optimizer, sampled interleaved."""
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for opt in variants.values():  # warm-up: states allocated, kernels loaded
        opt.step()
    for _ in range(repeats):
        for name, opt in variants.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                opt.step()
            samples[name].append((time.perf_counter() - t0) / steps)
    return {k: statistics.median(v) for k, v in samples.items()}


def _adamw_variants(shapes) -> dict[str, Callable[[], torch.optim.Optimizer]]:
    kw = dict(lr=1e-3, weight_decay=1e-2)
    return {
        "torch AdamW for-loop": lambda: torch.optim.AdamW(_params(shapes), foreach=False, **kw),
        "torch AdamW foreach": lambda: torch.optim.AdamW(_params(shapes), foreach=True, **kw),
        "torch AdamW fused": lambda: torch.optim.AdamW(_params(shapes), fused=True, **kw),
        "gradwise adamw": lambda: go.adamw(_params(shapes), decay_mask="all", **kw),
        "gradwise adamw reference": lambda: go.adamw(_params(shapes), decay_mask="all", fused=False, **kw),
        "gradwise adamw prox=L1": lambda: go.adamw(_params(shapes), decay_mask="all", prox=L1(1e-4), **kw),
    }


def _sgd_variants(shapes) -> dict[str, Callable[[], torch.optim.Optimizer]]:
    kw = dict(lr=1e-3, momentum=0.9)
    return {
        "torch SGD default": lambda: torch.optim.SGD(_params(shapes), **kw),
        "torch SGD foreach": lambda: torch.optim.SGD(_params(shapes), foreach=True, **kw),
        "torch SGD fused": lambda: torch.optim.SGD(_params(shapes), fused=True, **kw),
        "gradwise sgd": lambda: go.sgd(_params(shapes), **kw),
        "gradwise sgd reference": lambda: go.sgd(_params(shapes), fused=False, **kw),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (well under a minute)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    repeats = 5 if args.quick else 21
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    ratios = []
    for label, shapes in SHAPES.items():
        steps = 2 if shapes[0][0] > 1000 else 10
        for family, makers in (("adamw", _adamw_variants(shapes)), ("sgd", _sgd_variants(shapes))):
            t = _time({k: make() for k, make in makers.items()}, repeats, steps)
            print(f"\n{label}, {family}: median ms per step")
            for k, v in t.items():
                print(f"  {k:<28} {v * 1e3:9.3f}")
            if family == "adamw":
                best = min(v for k, v in t.items() if k.startswith("torch"))
                ratios += [
                    (label, "adamw / fastest torch AdamW", t["gradwise adamw"] / best, 1.0),
                    (label, "prox-L1 adamw / adamw", t["gradwise adamw prox=L1"] / t["gradwise adamw"], 1.3),
                    (label, "adamw reference path / adamw", t["gradwise adamw reference"] / t["gradwise adamw"], None),
                ]
            else:
                best = min(v for k, v in t.items() if k.startswith("torch"))
                ratios += [
                    (label, "sgd momentum / torch SGD default", t["gradwise sgd"] / t["torch SGD default"], 1.0),
                    (label, "sgd momentum / fastest torch SGD", t["gradwise sgd"] / best, None),
                ]
    print("\nratios (goal in brackets)")
    for label, what, r, goal in ratios:
        mark = "" if goal is None else f"  [<= {goal}] {'ok' if r <= goal else 'MISS'}"
        print(f"  {label:<24} {what:<34} {r:6.3f}{mark}")


if __name__ == "__main__":
    main()
