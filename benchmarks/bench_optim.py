"""Step time of gradwise.optim against torch.optim, on CPU with 2 threads.

Prints, from one run:

* our ``adamw`` step / the fastest torch AdamW (for-loop, foreach, fused),
* our ``sgd`` with momentum / torch SGD (its default path, and its fastest),
* our ``adamw`` with ``prox=L1`` / our plain ``adamw``,
* our per-tensor reference path / our default (what the fused dispatch buys),

on 10M parameters in 4 tensors and on 1M parameters in 200 tensors. Every
optimizer gets its own copy of the same parameters and gradients; the
variants are timed interleaved, one step per sample, so that the ratios come
from the same machine state. Ratios are given for the median and for the
minimum of the samples: on a machine shared with other work the minimum is
the better estimate of a step's own cost (multi-threaded kernels such as the
fused ones suffer most from a busy machine).

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


def _time(variants: dict[str, torch.optim.Optimizer], repeats: int, steps: int) -> dict[str, list[float]]:
    """Seconds per step of each optimizer, ``repeats`` samples taken interleaved."""
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for opt in variants.values():  # warm-up: states allocated, kernels loaded
        opt.step()
    for _ in range(repeats):
        for name, opt in variants.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                opt.step()
            samples[name].append((time.perf_counter() - t0) / steps)
    return samples


def _ratio(times: dict[str, float], ours: str, peers: tuple[str, ...]) -> float:
    """``times[ours]`` over the fastest of ``peers``."""
    return times[ours] / min(times[k] for k in peers)


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
    # One step per sample, many samples: the min estimates a step's own cost
    # on a machine shared with other work, the median what it costs there.
    big_repeats, small_repeats = (5, 15) if args.quick else (31, 101)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    ratios = []
    for label, shapes in SHAPES.items():
        repeats = big_repeats if shapes[0][0] > 1000 else small_repeats
        for family, makers in (("adamw", _adamw_variants(shapes)), ("sgd", _sgd_variants(shapes))):
            samples = _time({k: make() for k, make in makers.items()}, repeats, 1)
            med = {k: statistics.median(v) for k, v in samples.items()}
            low = {k: min(v) for k, v in samples.items()}
            print(f"\n{label}, {family}: ms per step, median (min) of {repeats}")
            for k in samples:
                print(f"  {k:<28} {med[k] * 1e3:9.3f} ({low[k] * 1e3:.3f})")

            if family == "adamw":
                torch_paths = ("torch AdamW for-loop", "torch AdamW foreach", "torch AdamW fused")
                pairs = [
                    ("gradwise adamw", torch_paths, 1.0, "adamw / fastest torch AdamW"),
                    ("gradwise adamw prox=L1", ("gradwise adamw",), 1.3, "prox-L1 adamw / adamw"),
                    ("gradwise adamw reference", ("gradwise adamw",), None, "adamw reference / adamw"),
                ]
            else:
                torch_paths = ("torch SGD default", "torch SGD foreach", "torch SGD fused")
                pairs = [
                    ("gradwise sgd", ("torch SGD default",), 1.0, "sgd momentum / torch SGD"),
                    ("gradwise sgd", torch_paths, None, "sgd momentum / fastest torch SGD"),
                    ("gradwise sgd reference", ("gradwise sgd",), None, "sgd reference / sgd"),
                ]
            for ours, peer, goal, what in pairs:
                ratios.append((label, what, _ratio(med, ours, peer), _ratio(low, ours, peer), goal))
    print("\nratios of median (of min) times; goal in brackets, checked on both")
    for label, what, r_med, r_min, goal in ratios:
        mark = ""
        if goal is not None:
            verdict = ["MISS", "ok"][r_med <= goal] + "/" + ["MISS", "ok"][r_min <= goal]
            mark = f"  [<= {goal}] {verdict}"
        print(f"  {label:<24} {what:<34} {r_med:6.3f} ({r_min:.3f}){mark}")


if __name__ == "__main__":
    main()
