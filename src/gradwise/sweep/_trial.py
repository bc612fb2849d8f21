"""One trial: the run config it gives, the training run, and what the study keeps of it."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from gradwise.config import parse_config
from gradwise.errors import ConfigError
from gradwise.sweep._config import SweepConfig, trial_raw
from gradwise.sweep._space import Space
from gradwise.sweep._workers import worker_id
from gradwise.train import Callback, Control, TrainState

KEEP_TABLES = 4  # datasets a worker keeps loaded (a sweep over data.* loads each trial's)


class TrialPruning(Callback):
    """Report an epoch-record metric to an Optuna trial; stop when its pruner says so.

    At each epoch end ``trial.report(metrics[monitor], step=epoch)``; when
    ``trial.should_prune()`` it emits a ``"pruned"`` event and stops training
    (the partial run keeps its records). Under Optuna's ``NopPruner`` (a
    sweep's ``pruner: none``) nothing is reported: the trial has no
    intermediate values. A non-finite value emits
    ``"diverged"`` and stops at once: a diverged run does not come back.
    After ``fit``, :attr:`pruned_at` / :attr:`diverged_at` hold the epoch it
    stopped at, or None.

    Example:
        >>> # Trainer(..., callbacks=[TrialPruning(trial, "val_accuracy")])
    """

    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor
        # No pruner, no database traffic per epoch: a report is three statements
        # and a commit, should_prune re-reads the trial, and only a pruner reads
        # either (the sweep report draws each trial's epochs from its "run" record).
        from optuna.pruners import NopPruner

        self._ask = not isinstance(getattr(trial.study, "pruner", None), NopPruner)
        self.pruned_at: int | None = None
        self.diverged_at: int | None = None

    def on_epoch_end(self, state: TrainState) -> Control | None:
        if self.monitor not in state.metrics:
            keys = sorted(k for k in state.metrics if k.startswith(("train_", "val_")))
            raise ConfigError(
                f"sweep.metric {self.monitor!r} is not in the epoch record; available: "
                f"{', '.join(keys)}"
            )
        value = float(state.metrics[self.monitor])
        n, epoch = self.trial.number, state.epoch
        if not math.isfinite(value):
            self.diverged_at = epoch
            return Control.emit(
                "diverged", f"trial {n} stopped at epoch {epoch}: {self.monitor}={value}", stop=True
            )
        if not self._ask:
            return None
        self.trial.report(value, step=epoch)
        if not self.trial.should_prune():
            return None
        self.pruned_at = epoch
        return Control.emit(
            "pruned",
            f"sweep pruner stopped trial {n} at epoch {epoch}: {self.monitor}={value:.4g}",
            stop=True,
        )


class Objective:
    """The function Optuna calls: one training run per trial, its value returned.

    The trial's run directory is ``RUN_DIR/trials/trial-NNNN`` (checkpoints
    off, no progress bar). The trial's user attribute ``"run"`` keeps
    everything the sweep report needs, so a report can be drawn from a shared
    database alone: the per-epoch metrics, the final results per split,
    seconds (wall) and CPU seconds of the training run, the fraction of exact zeros in the weights and, with diagnostics
    on, per-layer gradient norms per epoch and dead/saturated fractions.
    """

    def __init__(self, cfg: SweepConfig, run_dir: Path, *, verbose: bool = True) -> None:
        self.cfg, self.spec = cfg, cfg.sweep
        self.space = Space(cfg.sweep)
        self.base = cfg.base()
        self.run_dir = Path(run_dir)
        self.verbose = verbose
        self.ran = 0  # trials this process trained
        self._tables: dict[str, Any] = {}  # data config (JSON) -> its loaded Table

    def table(self, data: Any) -> Any:
        """The dataset ``data`` (a DataConfig) names, loaded once per worker.

        Trials differ in their hyperparameters, rarely in their data, so the
        worker keeps the last ``KEEP_TABLES`` datasets it loaded (a CSV is
        parsed once, not once per trial); the recipe's split and
        standardization copy it, so every trial starts from the same rows.
        """
        from gradwise.recipes.train import load_table

        key = data.model_dump_json()
        if key not in self._tables:
            while len(self._tables) >= KEEP_TABLES:
                self._tables.pop(next(iter(self._tables)))
            self._tables[key] = load_table(data)
        return self._tables[key]

    def __call__(self, trial: Any) -> float:
        import optuna

        if self._surplus(trial):
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("the study already has its n_trials")
        values = self.space.suggest(trial)
        raw = trial_raw(self.base, values)
        name = f"trial-{trial.number:04d}"
        raw.update(name=name, runs_dir=str(self.run_dir / "trials"))
        callbacks = raw.setdefault("callbacks", {})
        # a killed trial is rerun from scratch: checkpoints would only cost time
        callbacks.update(progress=False, checkpoint={"enabled": False})
        run_cfg = parse_config(raw)
        trial.set_user_attr("worker", worker_id())  # lets a resumed sweep spot a dead worker
        pruning = TrialPruning(trial, self.spec.metric)
        extra: list[Any] = [pruning]
        diag = None
        if self.spec.diagnostics is not None:
            from gradwise.train import GradientDiagnostics

            diag = GradientDiagnostics(every=self.spec.diagnostics)
            extra.append(diag)
        from gradwise.recipes.train import run

        start, cpu = time.perf_counter(), time.process_time()
        # a trial's own report.html costs more than training a small model; the
        # sweep report covers every trial
        report = self.spec.trial_reports
        result = run(
            run_cfg,
            progress=False,
            extra_callbacks=extra,
            report=report,
            table=self.table(run_cfg.data),
        )
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
        self.ran += 1
        split, _, key = self.spec.metric.partition("_")
        final = result.results.get(split, {})
        if key not in final:
            raise ConfigError(
                f"sweep.metric {self.spec.metric!r}: the final {split} results have "
                f"{', '.join(sorted(final))}"
            )
        value = float(final[key])
        diverged = pruning.diverged_at is not None or not math.isfinite(value)
        self._keep(trial, result, diag, seconds, cpu, diverged)
        if pruning.pruned_at is not None:
            self._say(trial, f"pruned at epoch {pruning.pruned_at}", values, seconds)
            raise optuna.TrialPruned(f"pruned at epoch {pruning.pruned_at}")
        if diverged:  # the worst possible trial, not a failed one
            value = -math.inf if self.spec.direction == "maximize" else math.inf
        self._say(trial, f"{self.spec.metric}={value:.4g}", values, seconds)
        return value

    def _surplus(self, trial: Any) -> bool:
        """True when other workers already fill n_trials with trials numbered before this one.

        Trial numbers come from the shared storage in creation order, so the
        count is exact however many workers race for the last trial.
        """
        from optuna.trial import TrialState

        ahead = 0
        for t in trial.study.get_trials(deepcopy=False):
            if (
                t.number < trial.number
                and t.state != TrialState.FAIL
                and not t.user_attrs.get("surplus")
            ):
                ahead += 1
        return ahead >= self.spec.total_trials

    def _keep(
        self, trial: Any, result: Any, diag: Any, seconds: float, cpu: float, diverged: bool
    ) -> None:
        """Store what the report needs as one user attribute (one database write)."""
        from gradwise.regularization import sparsity

        info: dict[str, Any] = {
            "history": [
                {k: v for k, v in rec.items() if k == "epoch" or k.startswith(("train_", "val_"))}
                for rec in result.history
            ],
            "results": result.results,
            "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu, 3),  # this process, all its threads
            "sparsity": sparsity(result.model, mask="auto").total,  # weights, not biases
            "diverged": diverged,
        }
        if diag is not None and diag.epochs:
            info["diagnostics"] = {
                "layers": diag.layer_names,
                "grad_norm": [[e["grad_norm"][n] for n in diag.layer_names] for e in diag.epochs],
                "dead": diag.epochs[-1]["dead"],
                "saturated": diag.epochs[-1]["saturated"],
                "warnings": [w["message"] for w in diag.warnings],
            }
            if self.spec.trial_reports:
                from gradwise.report import write_report

                section = diag.report_section(result.run_dir / "plots")
                write_report(result.run_dir, title=f"sweep trial {trial.number}", extra=[section])
        trial.set_user_attr("run", info)

    def _say(self, trial: Any, what: str, values: dict[str, Any], seconds: float) -> None:
        if self.verbose:
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            print(f"trial {trial.number}: {what} ({shown}) {seconds:.1f}s", flush=True)
