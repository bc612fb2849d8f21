"""Demo section "lr": one model, four learning rates, and the guard that saves the largest.

The same MLP learns the digits with SGD + momentum at the rate that
:func:`gradwise.schedules.lr_find` suggests, at 1/100 of it (too small: it
barely moves in the time given) and at 10 times it (too large: the loss jumps
and the network ends at chance), the last once more with a
:class:`~gradwise.train.DivergenceGuard`, which rolls each jump (and each
slow climb of the validation loss) back, halves the rate, and ends on the
best epoch's weights. :func:`guard_claim` is the section's claim on one seed:
guarded within 3 points of the suggested rate, unguarded at chance. The
report opens with the four runs' loss curves and accuracies, then shows the
guarded run's own curves and rescue events, the range test, and last the
per-epoch table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from gradwise import data
from gradwise.demo._registry import register

TOO_SMALL, TOO_LARGE = 0.01, 10.0
BATCH = 128
CHANCE = 0.1  # ten classes


def _digits(seed: int = 0) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    # 450 test rows: one test row is 0.22 points, so "within 3 points" is 13 rows
    split = data.split(data.load("digits"), val=0.2, test=0.25, seed=seed)
    (train, val, test), _ = data.standardize(split)
    return tuple((torch.as_tensor(t.X), torch.as_tensor(t.y)) for t in (train, val, test))


def _model(seed: int = 0) -> torch.nn.Module:
    from gradwise.nn import MLP

    torch.manual_seed(seed)  # every run of one seed starts from the same weights
    return MLP(64, [128, 64], 10)


def _smooth(values: list[float], beta: float = 0.9) -> list[float]:
    """Bias-corrected moving average; non-finite values stay visible as gaps."""
    out, avg = [], 0.0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            out.append(math.nan)
            continue
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def _train(
    lr: float, splits: Any, epochs: int, callbacks: list[Any], seed: int = 0
) -> dict[str, Any]:
    from gradwise.nn import multiclass
    from gradwise.optim import sgd
    from gradwise.train import Callback, Trainer

    losses: list[float] = []

    class StepLoss(Callback):
        def on_step_end(self, state: Any) -> None:
            losses.append(float(state.loss))

    train, val, test = splits
    model = _model(seed)
    trainer = Trainer(
        model,
        sgd(model.parameters(), lr=lr, momentum=0.9),
        multiclass(10),
        epochs=epochs,
        batch_size=BATCH,
        seed=seed,
        callbacks=[StepLoss(), *callbacks],
    )
    history = trainer.fit(train, val)
    finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    # NaN weights still predict (argmax of NaN logits): no better than chance
    test_acc = trainer.evaluate(test)["accuracy"]
    return {
        "lr": lr,
        "losses": losses,
        "val_accuracy": history[-1]["val_accuracy"],
        "test_accuracy": test_acc,
        "final_lr": trainer.optimizer.param_groups[0]["lr"],
        "rescues": sum(e["kind"] == "divergence_rescue" for e in history.events),
        "finite": finite,
    }


def _suggest(splits: Any, seed: int, num_steps: int) -> Any:
    from gradwise.nn import multiclass
    from gradwise.optim import sgd
    from gradwise.schedules import lr_find

    probe = _model(seed)
    return lr_find(
        probe,
        multiclass(10),
        splits[0],
        sgd(probe.parameters(), lr=1e-3, momentum=0.9),
        batch_size=BATCH,
        num_steps=num_steps,
    )


def guard_claim(seed: int = 0, epochs: int = 20) -> dict[str, float]:
    """The lr section's claim on one seed: the guard rescues a 10x learning rate.

    Splits the digits, initialises the MLP and orders the batches with ``seed``,
    asks lr_find for a rate, and trains at it and at 10x it without and with a
    default :class:`~gradwise.train.DivergenceGuard`. Returns the three test
    accuracies and the claim's margins (>= 0 when it holds):

    * ``guarded_margin = guarded - (suggested - 0.03)``: within 3 points;
    * ``unguarded_margin = (CHANCE + 0.1) - unguarded``: at chance (<= 0.2).
    """
    from gradwise.train import DivergenceGuard

    splits = _digits(seed)
    best = _suggest(splits, seed, 100).suggestion
    suggested = _train(best, splits, epochs, [], seed)["test_accuracy"]
    unguarded = _train(best * TOO_LARGE, splits, epochs, [], seed)
    guarded = _train(best * TOO_LARGE, splits, epochs, [DivergenceGuard()], seed)
    return {
        "suggested_lr": best,
        "suggested": suggested,
        "unguarded": unguarded["test_accuracy"],
        "guarded": guarded["test_accuracy"],
        "rescues": guarded["rescues"],
        "guarded_margin": guarded["test_accuracy"] - (suggested - 0.03),
        "unguarded_margin": CHANCE + 0.1 - unguarded["test_accuracy"],
    }


@register(
    "lr", "Learning rate: too small, lr_find's suggestion, too large (guard off/on)", order=20
)
def demo(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Train at four learning rates, write ``report.html``; return the test accuracies."""
    from gradwise.report import Section, plot_curves, write_report
    from gradwise.train import DivergenceGuard, MetricsLogger

    out_dir = Path(out_dir)
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    splits = _digits()
    epochs = 20 if quick else 40

    finder = _suggest(splits, 0, 100 if quick else 200)
    best = finder.suggestion
    finder_png = finder.plot(plots / "lr_finder.png")

    runs = {
        f"too small (x{TOO_SMALL:g})": _train(best * TOO_SMALL, splits, epochs, []),
        "lr_find's suggestion": _train(best, splits, epochs, []),
        f"too large (x{TOO_LARGE:g}), no guard": _train(best * TOO_LARGE, splits, epochs, []),
        # Its metrics.jsonl is the run directory's: the report's curves and events.
        f"too large (x{TOO_LARGE:g}), guard": _train(
            best * TOO_LARGE,
            splits,
            epochs,
            [DivergenceGuard(), MetricsLogger(out_dir, log_every=1, tensorboard=False)],
        ),
    }
    curves_png = plot_curves(
        {name: (range(1, len(r["losses"]) + 1), _smooth(r["losses"])) for name, r in runs.items()},
        plots / "lr_loss_curves.png",
        title="training loss (moving average) at four learning rates",
        xlabel="optimizer step",
        ylabel="loss",
        logy=True,
    )
    rows = [
        {
            "run": name,
            "lr": r["lr"],
            "val accuracy": r["val_accuracy"],
            "test accuracy": r["test_accuracy"],
            "rescues": r["rescues"],
            "lr at the end": r["final_lr"],
            "finite weights": r["finite"],
        }
        for name, r in runs.items()
    ]
    guarded = runs[f"too large (x{TOO_LARGE:g}), guard"]
    report = write_report(
        out_dir,
        title="gradwise demo: the learning rate",
        # the point first: four rates side by side; the guarded run's own records follow
        lead=[
            Section(
                "Four learning rates, one model",
                text=(
                    f"An MLP (64-128-64-10, ReLU) learns the digits with SGD (momentum 0.9, "
                    f"batch {BATCH}) for {epochs} epochs from the same initial weights. lr_find "
                    f"suggests {best:.3g}. At 1/100 of it the loss hardly falls; at 10 times "
                    "it the loss jumps and the network ends near chance. With a "
                    f"DivergenceGuard the same too-large run was rolled back "
                    f"{guarded['rescues']} time(s), each time with half the learning rate: "
                    "at a loss spike to the last good state, at a validation loss that "
                    "stayed above its best for 2 epochs to the best epoch. It ends on its "
                    "best epoch's weights. The curves and events below are that guarded run's."
                ),
                tables=[("final accuracies", rows)],
                images=[curves_png],
            ),
        ],
        extra=[
            Section(
                "The learning-rate range test",
                text=(
                    "lr_find raises the learning rate exponentially over a short run and "
                    "records the smoothed loss; the suggestion is "
                    f"{finder.suggestion_rule}."
                ),
                images=[finder_png],
            ),
        ],
    )
    result: dict[str, Any] = {"suggested_lr": best}
    keys = ("too_small", "suggested", "too_large", "too_large_guarded")
    for key, r in zip(keys, runs.values()):
        result[f"{key}_test_accuracy"] = r["test_accuracy"]
    result["rescues"] = guarded["rescues"]
    result["report"] = str(report)
    return result
