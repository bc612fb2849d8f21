"""Step time of gradwise.optim against torch.optim, on CPU with 2 threads.

Prints, from one run:

* our ``adamw`` step / the fastest torch AdamW (for-loop, foreach, fused),
* our ``sgd`` with momentum / torch SGD (its default path, and its fastest),
* our ``adamw`` with ``prox=L1`` / our plain ``adamw``,
* our per-tensor reference path / our default (what the fused dispatch buys),

on 10M parameters in 4 tensors and on 1M parameters in 200 tensors; then
every other alias (``--aliases``, 2M parameters in 20 tensors): ours / the
fastest torch path (for-loop, foreach) for each torch.optim algorithm, and
ours / the reference package for lion, lamb, lars, schedule-free, lookahead
and SAM. Every
optimizer gets its own copy of the same parameters and gradients; the
variants are timed interleaved, one step per sample, so that the ratios come
from the same machine state. Two ratios are printed: the median over rounds
of the ratio within a round (every variant steps once per round, in shuffled
order), with the spread of those per-round ratios (their interquartile
range), and the ratio of the minima, each variant's cost when undisturbed. On
a machine shared with other work the two can differ a lot; multi-threaded
kernels such as the fused ones suffer most from a busy machine. The goals are
checked on the paired median: with 5 rounds it moved by +-0.1 between runs of
unchanged code, so even ``--quick`` takes 15 to 61 rounds (``--rounds N``
sets every table's count).

    python benchmarks/bench_optim.py [--quick] [--cpu-time] [--aliases-only] [--rounds N]

``--cpu-time`` measures with one thread and that thread's CPU time instead:
a step's own cost, which other processes on a shared machine cannot inflate.
"""

from __future__ import annotations

import argparse
import platform
import random
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


def _time(
    variants: dict[str, torch.optim.Optimizer], repeats: int, clock: Callable[[], float]
) -> dict[str, list[float]]:
    """Seconds of one step of each optimizer; in each of ``repeats`` rounds every
    optimizer steps once, in a shuffled order."""
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(3):  # warm-up: states allocated, kernels loaded, caches built
        for opt in variants.values():
            opt.step()
    order = list(variants)
    rng = random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            t0 = clock()
            variants[name].step()
            samples[name].append(clock() - t0)
    return samples


def _paired_ratio(samples: dict[str, list[float]], ours: str, peers: tuple[str, ...]) -> float:
    """Median over rounds of ``ours`` / the fastest of ``peers`` in the same round.

    Rounds are close in time, so a ratio within a round sees one machine
    state; the median over rounds discards the rounds that other work spoiled.
    """
    return statistics.median(_round_ratios(samples, ours, peers))


def _round_ratios(samples: dict[str, list[float]], ours: str, peers: tuple[str, ...]) -> list[float]:
    rounds = zip(samples[ours], *(samples[k] for k in peers))
    return [r[0] / min(r[1:]) for r in rounds]


def _spread(samples: dict[str, list[float]], ours: str, peers: tuple[str, ...]) -> str:
    """The interquartile range of the per-round ratios, ``q1-q3``."""
    q = statistics.quantiles(_round_ratios(samples, ours, peers), n=4)
    return f"{q[0]:.2f}-{q[2]:.2f}"


def _ratio_of_min(samples: dict[str, list[float]], ours: str, peers: tuple[str, ...]) -> float:
    """min(``ours``) / min over ``peers`` of their min: each one's cost when undisturbed."""
    return min(samples[ours]) / min(min(samples[k]) for k in peers)


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


ALIAS_SHAPES = [(100, 1000)] * 20


def _closure_params(shapes, sparse=False):
    ps = _params(shapes)
    if sparse:  # an embedding's sparse gradient: 64 of its rows
        g = torch.Generator().manual_seed(1)
        for p in ps:
            rows = torch.randint(0, p.shape[0], (64,), generator=g).unique()
            vals = torch.randn(len(rows), p.shape[1], generator=g) * 1e-2
            p.grad = torch.sparse_coo_tensor(rows[None], vals, p.shape, check_invariants=True).coalesce()
    return ps


class _Fixed:
    """Run an optimizer whose ``step`` needs a closure; the closure restores fixed gradients."""

    def __init__(self, opt, params):
        self.opt, self.params = opt, params
        self.grads = [p.grad.clone() for p in params]

    def _closure(self):
        for p, g in zip(self.params, self.grads):
            p.grad = g.clone()
        return torch.tensor(1.0)

    def step(self):
        return self.opt.step(self._closure)


def _with_closure(make):
    def build(shapes):
        ps = _params(shapes)
        return _Fixed(make(ps), ps)
    return build


def _alias_cases() -> dict[str, tuple[Callable, dict[str, Callable]]]:
    """alias -> (our maker, {peer name: peer maker}); a maker takes the shapes."""
    import lion_pytorch
    import pytorch_optimizer as po
    import schedulefree as sf

    def torch_paths(cls, foreach=True, **kw):
        peers = {f"torch {cls.__name__} for-loop": lambda s: cls(_params(s), foreach=False, **kw)}
        if foreach:
            peers[f"torch {cls.__name__} foreach"] = lambda s: cls(_params(s), foreach=True, **kw)
        return peers

    def sf_train(opt):
        opt.train()
        return opt

    T = torch.optim
    cases = {
        "rmsprop": (lambda s: go.rmsprop(_params(s), lr=1e-3, decay_mask="all"), torch_paths(T.RMSprop, lr=1e-3)),
        "adagrad": (lambda s: go.adagrad(_params(s), decay_mask="all"), {
            **torch_paths(T.Adagrad), "torch Adagrad fused": lambda s: T.Adagrad(_params(s), fused=True)}),
        "nadam": (lambda s: go.nadam(_params(s), decay_mask="all"), torch_paths(T.NAdam)),
        "radam": (lambda s: go.radam(_params(s), decay_mask="all"), torch_paths(T.RAdam)),
        "adamax": (lambda s: go.adamax(_params(s), decay_mask="all"), torch_paths(T.Adamax)),
        "adadelta": (lambda s: go.adadelta(_params(s), decay_mask="all"), torch_paths(T.Adadelta)),
        "asgd": (lambda s: go.asgd(_params(s), decay_mask="all"), torch_paths(T.ASGD)),
        "rprop": (lambda s: go.rprop(_params(s)), torch_paths(T.Rprop)),
        "adafactor": (lambda s: go.adafactor(_params(s), decay_mask="all"), torch_paths(T.Adafactor)),
        "muon": (lambda s: go.muon(_params(s)), {"torch Muon": lambda s: T.Muon(_params(s))}),
        "sparse_adam": (lambda s: go.sparse_adam(_closure_params(s, sparse=True)),
                        {"torch SparseAdam": lambda s: T.SparseAdam(_closure_params(s, sparse=True))}),
        "lbfgs": (_with_closure(lambda ps: go.lbfgs(ps, max_iter=5)),
                  {"torch LBFGS": _with_closure(lambda ps: T.LBFGS(ps, max_iter=5))}),
        "lion": (lambda s: go.lion(_params(s), weight_decay=0.1, decay_mask="all"),
                 {"lion-pytorch Lion": lambda s: lion_pytorch.Lion(_params(s), weight_decay=0.1)}),
        "lamb": (lambda s: go.lamb(_params(s), weight_decay=0.01),
                 {"pytorch-optimizer Lamb": lambda s: po.Lamb(_params(s), weight_decay=0.01)}),
        "lars": (lambda s: go.lars(_params(s), weight_decay=1e-4),
                 {"pytorch-optimizer LARS": lambda s: po.LARS(_params(s), weight_decay=1e-4)}),
        "schedule_free_adamw": (lambda s: go.schedule_free_adamw(_params(s)), {
            "schedulefree AdamW for-loop": lambda s: sf_train(sf.AdamWScheduleFree(_params(s), foreach=False)),
            "schedulefree AdamW foreach": lambda s: sf_train(sf.AdamWScheduleFree(_params(s), foreach=True))}),
        "schedule_free_sgd": (lambda s: go.schedule_free_sgd(_params(s)), {
            "schedulefree SGD for-loop": lambda s: sf_train(sf.SGDScheduleFree(_params(s), foreach=False)),
            "schedulefree SGD foreach": lambda s: sf_train(sf.SGDScheduleFree(_params(s), foreach=True))}),
        "lookahead(adamw)": (
            lambda s: (lambda ps: go.Optimizer(ps, go.chain(*go.adamw(ps, decay_mask="all").leaves,
                                                            go.lookahead())))(_params(s)),
            {"pytorch-optimizer Lookahead(AdamW)": lambda s: po.Lookahead(T.AdamW(_params(s)))}),
        "SAM(sgd)": (_with_closure(lambda ps: go.SAM(go.sgd(ps, lr=0.1, momentum=0.9))),
                     {"pytorch-optimizer SAM(SGD)": _with_closure(
                         lambda ps: po.SAM(ps, T.SGD, lr=0.1, momentum=0.9))}),
    }
    return cases


def _bench_aliases(repeats: int, clock: Callable[[], float]) -> list[tuple]:
    rows = []
    print(f"\nevery alias, 2M params / 20 tensors: ms per step, median (min) of {repeats}")
    for name, (ours, peers) in _alias_cases().items():
        variants = {f"gradwise {name}": ours(ALIAS_SHAPES), **{k: m(ALIAS_SHAPES) for k, m in peers.items()}}
        samples = _time(variants, repeats, clock)
        for k, v in samples.items():
            print(f"  {k:<36} {statistics.median(v) * 1e3:9.3f} ({min(v) * 1e3:.3f})")
        peer = tuple(peers)
        ours_k = f"gradwise {name}"
        rows.append(("2M / 20 tensors", f"{name} / fastest peer", _paired_ratio(samples, ours_k, peer),
                     _ratio_of_min(samples, ours_k, peer), 1.0, _spread(samples, ours_k, peer)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (well under a minute)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="1 thread, CPU time of that thread: a step's own cost, unaffected by other work on the machine",
    )
    parser.add_argument("--aliases-only", action="store_true", help="only the every-alias table")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of every table (default: by size)")
    args = parser.parse_args()
    torch.set_num_threads(1 if args.cpu_time else 2)
    clock = time.thread_time if args.cpu_time else time.perf_counter
    # One step per sample, many samples: the min estimates a step's own cost
    # on a machine shared with other work, the median what it costs there.
    big_repeats, small_repeats, alias_repeats = (15, 61, 21) if args.quick else (41, 151, 61)
    if args.rounds:
        big_repeats = small_repeats = alias_repeats = args.rounds
    what = "thread CPU time" if args.cpu_time else "wall time"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {what}, "
          f"{platform.processor() or platform.machine()}")
    ratios = []
    for label, shapes in ({} if args.aliases_only else SHAPES).items():
        repeats = big_repeats if shapes[0][0] > 1000 else small_repeats
        for family, makers in (("adamw", _adamw_variants(shapes)), ("sgd", _sgd_variants(shapes))):
            samples = _time({k: make() for k, make in makers.items()}, repeats, clock)
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
                ratios.append((label, what, _paired_ratio(samples, ours, peer),
                               _ratio_of_min(samples, ours, peer), goal, _spread(samples, ours, peer)))
    ratios += _bench_aliases(alias_repeats, clock)
    print("\nratios: median of paired rounds [their q1-q3] (ratio of minima); goal checked on the median "
          "(and on the minima)")
    for label, what, r_med, r_min, goal, spread in ratios:
        mark = ""
        if goal is not None:
            verdict = ["MISS", "ok"][r_med <= goal] + " (" + ["miss", "ok"][r_min <= goal] + ")"
            mark = f"  <= {goal}: {verdict}"
        print(f"  {label:<24} {what:<38} {r_med:6.3f} [{spread}] ({r_min:.3f}){mark}")


if __name__ == "__main__":
    main()
