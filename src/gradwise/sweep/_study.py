"""Run a sweep: open (or continue) the Optuna study, run workers, write the report.

The study lives in a database: by default ``RUN_DIR/study.db`` (SQLite), or a
URL that workers on several machines share. Every worker loops: take a
waiting trial (a retry) or start a new one while the study has fewer than
``n_trials``; wait while other workers' trials are running; stop when all are
finished. Re-running a sweep therefore continues it: finished trials stay,
interrupted ones are run again.
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml

from gradwise.config import apply_overrides, read_yaml
from gradwise.errors import ConfigError
from gradwise.sweep._config import SweepConfig, SweepSpec, parse_sweep
from gradwise.sweep._report import summarize, write_sweep_report
from gradwise.sweep._result import SweepResult
from gradwise.sweep._storage import (
    make_pruner,
    make_sampler,
    open_storage,
    optuna_module,
    quiet_optuna,
    retrying,
    shown_url,
    storage_url,
)
from gradwise.sweep._trial import Objective
from gradwise.sweep._workers import (
    alive,
    cores,
    local_workers,
    register,
    thread_share,
    unregister,
    worker_id,
)
from gradwise.train._io import write_text

POLL_S = 2.0  # how often an idle worker looks whether the others are done


def fingerprint(spec: SweepSpec) -> dict[str, Any]:
    """What must not change when a sweep is continued: the space and the objective."""
    return spec.model_dump(mode="json", include={"method", "metric", "direction", "params"})


def open_study(cfg: SweepConfig, url: str, storage: Any = None) -> Any:
    """Create the study, or load it and check that it is the same sweep.

    ``storage``: an Optuna storage already opened on ``url`` (default: one is opened).
    """
    optuna = optuna_module()
    spec = cfg.sweep
    storage = open_storage(url) if storage is None else storage
    study = retrying(
        lambda: optuna.create_study(
            study_name=cfg.name,
            storage=storage,
            direction=spec.direction,
            sampler=make_sampler(spec),
            pruner=make_pruner(spec),
            load_if_exists=True,
        ),
        "study",
    )
    if study.direction.name.lower() != spec.direction:
        raise ConfigError(
            f"study {cfg.name!r} in {shown_url(url)} was made to {study.direction.name.lower()}; "
            f"this config says {spec.direction}: change 'name' or delete the study"
        )
    mine = fingerprint(spec)
    theirs = study.user_attrs.get("sweep")
    if theirs is None:
        study.set_user_attr("sweep", mine)
        study.set_user_attr("base", cfg.base())
    elif theirs != mine:
        changed = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise ConfigError(
            f"study {cfg.name!r} in {shown_url(url)} was made by a different sweep "
            f"({', '.join(changed)} changed): change 'name', or delete the study to start over"
        )
    return study


# -- workers --------------------------------------------------------------------------------


def _fail_dead_local(study: Any, storage: Any, trials: list[Any]) -> bool:
    """Fail (and so retry) running trials whose worker process on this host is gone.

    The heartbeat catches those of other machines after GRACE_S; here a
    resumed sweep need not wait for it. ``trials``: the study's trials as just
    read (no read of its own). ``storage`` is the one the study was opened on
    (Optuna's public storage API: trial ids from study name and trial number).
    Returns whether a trial was failed.
    """
    from optuna.trial import TrialState

    host = worker_id().rsplit(":", 1)[0]
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None) or getattr(
        storage, "get_failed_trial_callback", None
    )
    callback = None
    study_id = None
    failed = False
    for t in trials:
        if t.state != TrialState.RUNNING:
            continue
        h, _, pid = t.user_attrs.get("worker", "").rpartition(":")
        if h != host or not pid.isdigit() or alive(int(pid)):
            continue
        if callback is None and getter is not None:
            callback = getter()
        if study_id is None:
            study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            failed = True
            if callback is not None:
                callback(study, storage.get_trial(trial_id))
    return failed


def _warm_up(cfg: SweepConfig, objective: Objective) -> None:
    """Import the training recipe and load the base config's data, before any trial.

    A worker's first trial would otherwise carry seconds of imports (torch's
    and scikit-learn's modules, the dataset's loader) while holding a trial
    open in the study; a broken data path fails here, before a trial exists.
    The table stays loaded for the worker's trials (:meth:`Objective.table`).
    A sweep over ``data.*`` loads nothing here: each trial names its own data.
    """
    import gradwise.recipes.train  # noqa: F401  (the recipe's imports, outside any trial)

    if not any(path.split(".")[0] == "data" for path in cfg.sweep.params):
        objective.table(cfg.data)


def work(
    raw: dict[str, Any],
    url: str,
    threads: int | None = None,
    verbose: bool = True,
    study: Any = None,
    storage: Any = None,
) -> int:
    """One worker: run trials until the study is complete; returns how many it trained.

    Torch's thread count for all of the worker's work (data, training,
    evaluation): ``GRADWISE_THREADS=N``; else, where the user set none
    (``OMP_NUM_THREADS``, ``torch.set_num_threads``), the worker's share of
    the cores among the live workers of the study on this machine, counted
    before each trial and capped by ``threads`` (``--jobs``' share; see
    :mod:`gradwise.sweep._workers`). ``study`` and the ``storage`` it was
    opened on: both, or neither (then opened on ``url``).
    """
    import torch

    from gradwise.train._threads import threads_override

    chosen = threads_override()  # GRADWISE_THREADS=N: the whole worker, evaluation included
    before = torch.get_num_threads()
    if isinstance(chosen, int):
        torch.set_num_threads(chosen)
    share = chosen is None or threads is not None  # else the user's own count stands
    try:
        return _work(raw, url, verbose, study, storage, share, threads)
    finally:
        torch.set_num_threads(before)  # a worker in the caller's process leaves it as it was


def _work(
    raw: dict[str, Any],
    url: str,
    verbose: bool,
    study: Any,
    storage: Any,
    share: bool,
    cap: int | None,
) -> int:
    """The loop of :func:`work`; ``share``: set the thread share (at most ``cap``) per trial."""
    optuna = optuna_module()
    import torch
    from optuna.trial import TrialState

    cfg = SweepConfig.model_validate(raw)
    # waits: a bar while other workers' trials finish (opened at the first wait)
    with quiet_optuna(), contextlib.ExitStack() as waits:
        bar = None
        if study is None or storage is None:
            storage = open_storage(url)
            study = optuna.load_study(
                study_name=cfg.name, storage=storage,
                sampler=make_sampler(cfg.sweep), pruner=make_pruner(cfg.sweep),
            )  # fmt: skip
        me = register(study)  # before the warm-up: the others count this worker from now on
        waits.callback(unregister, study, me)
        alone = torch.get_num_threads()
        objective = Objective(cfg, cfg.run_dir, verbose=verbose)
        _warm_up(cfg, objective)
        total = cfg.sweep.total_trials
        # One read of the study per turn: study.optimize itself fails stale
        # trials before it asks, so that is done here only before a wait.
        while True:
            trials = [
                t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")
            ]
            if _fail_dead_local(study, storage, trials):
                continue  # their retries are queued: read again
            states = [t.state for t in trials]
            taken = sum(s != TrialState.FAIL for s in states)
            if TrialState.WAITING in states or taken < total:
                if share:
                    n = thread_share(cores(), local_workers(study.user_attrs), cap)
                    torch.set_num_threads(alone if n is None else n)
                study.optimize(objective, n_trials=1, catch=(), gc_after_trial=False)
            elif TrialState.RUNNING in states:
                optuna.storages.fail_stale_trials(study)  # another machine's, silent too long
                if bar is None:
                    from gradwise._steps import step_progress

                    what = "waiting for the other workers' trials"
                    bar = waits.enter_context(step_progress(what, total=total))
                bar.update(completed=sum(s.is_finished() for s in states))
                time.sleep(POLL_S)
            else:
                return objective.ran


def run_sweep(
    sweep_cfg: SweepConfig,
    *,
    jobs: int = 1,
    storage: str | None = None,
    verbose: bool = True,
) -> SweepResult:
    """Run (or continue) a sweep and write its report.

    Args:
        sweep_cfg: a validated :class:`SweepConfig` (see :func:`parse_sweep`).
        jobs: local worker processes sharing the study (each gets
            ``cpu_count // jobs`` torch threads).
        storage: a database URL (``postgresql://user:pw@host/db``) shared by
            workers on several machines; default ``sweep.storage`` or
            ``RUN_DIR/study.db``.
        verbose: print one line per finished trial.

    Re-running the same config continues the study: finished trials are kept
    and the study grows to ``n_trials``; trials of a worker that died are run
    again. A changed search space or metric is refused (change ``name``).

    Example:
        >>> # cfg = parse_sweep(read_yaml("examples/sweep_activations.yaml"))
        >>> # result = run_sweep(cfg, jobs=2); result.best_params
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be an int >= 1, got {jobs!r}")
    url = storage_url(sweep_cfg, storage)
    run_dir = sweep_cfg.run_dir
    fresh = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    raw = sweep_cfg.model_dump(mode="json", exclude_unset=True)
    raw.update(name=sweep_cfg.name, runs_dir=sweep_cfg.runs_dir)
    from gradwise.recipes._setup import cleanup_on_failure

    with cleanup_on_failure(run_dir, fresh), quiet_optuna():  # a refused study leaves no new dir
        storage_obj = open_storage(url)
        study = open_study(sweep_cfg, url, storage_obj)
    # as written (unset fields stay unset): `gradwise report` re-reads it
    write_text(run_dir / "sweep.yaml", yaml.safe_dump(raw, sort_keys=False))
    if jobs == 1:
        ran = work(raw, url, verbose=verbose, study=study, storage=storage_obj)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        # spawn, not fork: a forked copy of a process that already ran torch can deadlock
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(work, raw, url, threads, verbose) for _ in range(jobs)]
            ran = sum(f.result() for f in futures)
    with quiet_optuna():
        report = write_sweep_report(study, sweep_cfg, run_dir)
        return summarize(study, sweep_cfg, run_dir, shown_url(url), ran, report)


def apply_sweep_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``--set`` overrides, where a swept parameter's name keeps its dots.

    ``sweep.params.optimizer.lr.values=[0.1, 0.01]`` sets ``values`` of the
    parameter ``optimizer.lr`` (the longest listed parameter name that
    matches); ``sweep.params.optimizer.momentum={values: [0.0, 0.9]}`` adds
    the parameter ``optimizer.momentum``. Other keys are ordinary overrides.

    >>> raw = {"sweep": {"params": {"optimizer.lr": {"values": [0.1]}}}}
    >>> apply_sweep_overrides(raw, ["sweep.params.optimizer.lr.values=[0.2]"])["sweep"]
    {'params': {'optimizer.lr': {'values': [0.2]}}}
    """
    prefix = "sweep.params."
    plain = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.startswith(prefix):
            plain.append(item)
            continue
        params = raw.setdefault("sweep", {}).setdefault("params", {})
        if not isinstance(params, dict):
            raise ConfigError(f"--set {key}: sweep.params is not a mapping")
        rest = key[len(prefix) :]
        names = [p for p in params if rest == p or rest.startswith(p + ".")]
        name = max(names, key=len, default=rest)
        value = yaml.safe_load(text) if text.strip() else None
        if name == rest:
            params[name] = value
        else:
            node = params[name] if isinstance(params[name], dict) else {}
            params[name] = node
            for part in rest[len(name) + 1 :].split(".")[:-1]:
                node = node.setdefault(part, {})
            node[rest.rsplit(".", 1)[-1]] = value
    return apply_overrides(raw, plain)


def load_sweep_config(path: str | Path, overrides: list[str] | None = None) -> SweepConfig:
    """Read a sweep YAML file, apply ``key.path=value`` overrides and validate it."""
    raw = apply_sweep_overrides(read_yaml(path), list(overrides or []))
    try:
        return parse_sweep(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def run_sweep_file(
    path: Path, overrides: list[str], jobs: int = 1, storage: str | None = None
) -> SweepResult:
    """``gradwise sweep CONFIG [--set k=v] [--jobs N] [--storage URL]``; ConfigError on bad input."""
    return run_sweep(load_sweep_config(path, overrides), jobs=jobs, storage=storage)


def report_sweep(run_dir: str | Path, storage: str | None = None) -> SweepResult:
    """Redraw the report of a sweep directory (``sweep.yaml`` + its study), running nothing."""
    run_dir = Path(run_dir)
    if not (run_dir / "sweep.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a sweep directory: it has no sweep.yaml")
    cfg = parse_sweep(read_yaml(run_dir / "sweep.yaml"))
    # the directory may have moved since the sweep ran: its own study.db comes first
    url = storage or cfg.sweep.storage or f"sqlite:///{(run_dir / 'study.db').resolve()}"
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ConfigError(f"{run_dir}: no study.db; pass the storage URL the sweep used")
    with quiet_optuna():
        study = open_study(cfg, url)
        report = write_sweep_report(study, cfg, run_dir)
        return summarize(study, cfg, run_dir, shown_url(url), 0, report)
