"""The ``gradwise`` command.

``gradwise demo | train CONFIG | lr-find CONFIG | finetune CONFIG |
instruct CONFIG | linear CONFIG | sweep CONFIG | report RUN_DIR | export RUN_DIR``. Errors a user can cause (a bad config, bad data) print
one clear message and exit with status 2, with no traceback.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from gradwise._format import format_pairs, format_value
from gradwise.errors import GradwiseError

app = typer.Typer(
    name="gradwise",
    help="Gradient-based training and fine-tuning, one small tested piece per technique.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config field: key.path=value (YAML value)."),
]


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn gradwise errors into one red line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GradwiseError as exc:
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@_user_errors
def train(
    config: Annotated[Path, typer.Argument(help="YAML run config.")],
    set_: SetOption = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing runs/NAME.")] = False,
) -> None:
    """Train a model from a YAML config; writes runs/NAME/ with a report."""
    from gradwise.config import load_config
    from gradwise.recipes.train import run
    from gradwise.train import is_main_process

    cfg = load_config(config, set_)
    result = run(cfg, resume=resume, overwrite=overwrite, progress=progress)
    if not is_main_process():
        return
    for split, metrics in result.results.items():
        typer.echo(f"{split:>5}: {format_pairs(metrics)}")
    typer.echo(f"report: {result.run_dir / 'report.html'}")


@app.command("lr-find")
@_user_errors
def lr_find_cmd(
    config: Annotated[Path, typer.Argument(help="YAML run config.")],
    set_: SetOption = None,
) -> None:
    """LR range test on a config's model and data: prints the suggestion, writes the plot."""
    from gradwise.config import load_config
    from gradwise.recipes._setup import cleanup_on_failure
    from gradwise.recipes.train import choose_lr, prepare

    cfg = load_config(config, set_)
    fresh = not cfg.run_dir.exists()
    with cleanup_on_failure(cfg.run_dir, fresh):  # a failed test leaves no new runs/NAME
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        plot = cfg.run_dir / "lr_find.png"
        found = choose_lr(cfg, prepare(cfg), plot)
    typer.echo(f"suggested lr: {found.suggestion:.3g}  ({found.suggestion_rule})")
    if len(found.group_lrs) > 1:
        typer.echo("per group: " + ", ".join(f"{lr:.3g}" for lr in found.group_lrs))
    typer.echo(f"plot: {plot}")


@app.command()
@_user_errors
def finetune(
    config: Annotated[Path, typer.Argument(help="YAML fine-tuning config.")],
    set_: SetOption = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing runs/NAME.")] = False,
) -> None:
    """Fine-tune a gradwise checkpoint or a local Hugging Face model with a plan."""
    from gradwise.config import load_config
    from gradwise.finetune._config import FinetuneConfig
    from gradwise.recipes.finetune import run as run_finetune

    cfg = load_config(config, set_, model=FinetuneConfig)
    result = run_finetune(cfg, overwrite=overwrite, progress=progress)
    for split, metrics in result.results.items():
        shown = format_pairs(metrics) if isinstance(metrics, dict) else format_value(metrics)
        typer.echo(f"{split:>14}: {shown}")
    if result.forgetting:
        typer.echo(f"{'forgetting':>14}: {format_pairs(result.forgetting)}")
    typer.echo(f"report: {result.run_dir / 'report.html'}")


@app.command()
@_user_errors
def instruct(
    target: Annotated[
        str, typer.Argument(help="A YAML instruction-tuning config, or 'init-base'.")
    ],
    set_: SetOption = None,
    out: Annotated[
        Path | None, typer.Option(help="init-base: where the tiny base model is saved.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing runs/NAME (init-base: a non-empty --out).")
    ] = False,
) -> None:
    """Instruction-tune a local causal LM (full or LoRA); `instruct init-base --out DIR`
    builds the tiny offline base model."""
    from gradwise.errors import ConfigError

    if target == "init-base":
        from gradwise.instruct import init_base

        if out is None:
            raise ConfigError("instruct init-base needs --out DIR")
        if set_:
            raise ConfigError(f"instruct init-base takes no --set (got {set_[0]!r}); its only option is --out DIR")
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out: {out} is a file; give a directory for the base model")
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            raise ConfigError(f"--out: {out} is not empty; pass --overwrite to replace it, or give a new directory")
        if progress:  # the corpus and tokenizer come before the first pretraining line
            import inspect

            defaults = {k: v.default for k, v in inspect.signature(init_base).parameters.items()}
            typer.echo(
                f"instruct init-base: a corpus of {defaults['documents']:,} documents, a BPE "
                f"tokenizer, then {defaults['steps']} pretraining steps (about 100 s on 2 idle "
                f"cores) -> {out}", err=True,
            )  # fmt: skip
        info = init_base(out, progress=progress)
        typer.echo(
            f"base model: {out} ({info.n_parameters:,} parameters, {info.steps} steps, "
            f"loss {info.losses[0]:.2f} -> {info.losses[-1]:.2f}, {info.seconds:.0f} s)"
        )
        return
    from gradwise.config import load_config
    from gradwise.instruct import InstructConfig
    from gradwise.recipes.instruct import run as run_instruct

    if out is not None:
        raise ConfigError(f"--out is for instruct init-base; a config's run goes to runs_dir/name (got --out {out})")
    cfg = load_config(Path(target), set_, model=InstructConfig)
    result = run_instruct(cfg, overwrite=overwrite, progress=progress)
    for key in ("before", "after"):
        if key in result.results:
            typer.echo(f"{key:>6}: {format_pairs(result.results[key])}")
    typer.echo(f"report: {result.run_dir / 'report.html'}")


@app.command()
@_user_errors
def linear(
    config: Annotated[Path, typer.Argument(help="YAML linear-model config.")],
    set_: SetOption = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing runs/NAME.")] = False,
) -> None:
    """Fit a Lasso / Ridge / Elastic Net / logistic model; writes the path, CV and report."""
    from gradwise.config import load_config
    from gradwise.recipes.linear import LinearConfig, run

    result = run(load_config(config, set_, model=LinearConfig), overwrite=overwrite)
    for key, value in result.results.items():
        typer.echo(f"{key}: {format_value(value)}")
    typer.echo(f"report: {result.run_dir / 'report.html'}")


@app.command()
@_user_errors
def sweep(
    config: Annotated[Path, typer.Argument(help="YAML run config with a sweep: section.")],
    set_: SetOption = None,
    jobs: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 1,
    storage: Annotated[
        str | None,
        typer.Option(help="Optuna storage URL shared by several machines (default: SQLite in the run dir)."),
    ] = None,
) -> None:
    """Search hyperparameters on Optuna (grid, random, TPE) with pruning; writes a sweep report."""
    from gradwise.sweep import run_sweep_file

    result = run_sweep_file(config, list(set_ or []), jobs=jobs, storage=storage)
    typer.echo(f"trials run now: {result.ran}, in study: {len(result.trials)}")
    if result.best_trial is not None:
        typer.echo(f"best {result.metric} = {format_value(result.best_value)} (trial {result.best_trial})")
        for key, value in (result.best_params or {}).items():
            typer.echo(f"   {key} = {format_value(value)}")
    typer.echo(f"report: {result.report}")


@app.command()
@_user_errors
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Re-draw the plots and report.html of a run, a sweep or a linear fit, keeping what it wrote."""
    from gradwise.report import redraw

    if (run_dir / "sweep.yaml").exists():
        from gradwise.sweep import report_sweep

        typer.echo(f"report: {report_sweep(run_dir).report}")
        return
    typer.echo(f"report: {redraw(run_dir)}")


@app.command()
@_user_errors
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory or a sharded checkpoint.")],
    out: Annotated[Path | None, typer.Option(help="Output directory (default RUN_DIR/export).")] = None,
) -> None:
    """Write a checkpoint's weights to model.safetensors (an FSDP one consolidated), plus a PEFT adapter for LoRA."""
    from gradwise.train._export import export_checkpoint

    for path in export_checkpoint(run_dir, out if out is not None else run_dir / "export"):
        typer.echo(f"wrote {path}")


@app.command()
@_user_errors
def demo(
    section: Annotated[str | None, typer.Argument(help="Run only this section, in full.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the sections.")] = False,
    quick: Annotated[
        bool | None, typer.Option("--quick/--full", help="Quick or full version.")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where demo runs are written.")] = Path("runs"),
    check: Annotated[
        bool, typer.Option("--check", help="Check the claims over seeds x threads; print a table.")
    ] = False,
    seeds: Annotated[int, typer.Option(min=1, help="--check: seeds 0..N-1.")] = 5,
    threads: Annotated[
        list[int] | None, typer.Option(min=1, help="--check: a torch thread count (repeatable).")
    ] = None,
) -> None:
    """The guided tour: every section's quick version, or one section."""
    from gradwise._optional import MissingDependency
    from gradwise.demo import run_section, sections

    if check:
        from gradwise.demo import all_pass, check_claims, claims_table

        start = time.perf_counter()
        counts = threads or [1, 2]
        rows = check_claims([section] if section else None, seeds, counts, echo=typer.echo)
        typer.echo(claims_table(rows))
        typer.echo(f"{seeds} seed(s) x threads {counts}: {time.perf_counter() - start:.0f} s")
        if not all_pass(rows):
            raise typer.Exit(1)
        return
    if list_:
        for sec in sections():
            typer.echo(f"{sec.name:<16} {sec.title}")
        return
    chosen = [section] if section else [s.name for s in sections()]
    # the whole tour runs quick versions; a single named section runs in full
    is_quick = quick if quick is not None else section is None
    summary = []
    for name in chosen:
        typer.secho(f"== demo: {name}", bold=True)
        try:
            result = run_section(name, runs_dir / f"demo-{name}", quick=is_quick)
        except MissingDependency as exc:
            if section is not None:  # the one section asked for: an error, status 2
                raise
            # the whole tour goes on: one line naming the extra, then the next section
            typer.secho(f"   skipped: {exc}", fg="yellow")
            summary.append((name, {"skipped": True}))
            continue
        summary.append((name, result))
        for key, value in result.items():
            typer.echo(f"   {key}: {format_value(value)}")
    if len(summary) > 1:
        typer.secho("== tour done", bold=True)
        for name, result in summary:
            if result.get("skipped"):
                typer.echo(f"   {name:<16} skipped: needs an extra (above)")
                continue
            typer.echo(f"   {name:<16} {result.get('seconds', '?')} s  {result.get('report', '')}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="gradwise")


if __name__ == "__main__":
    main()
