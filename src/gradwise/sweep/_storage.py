"""Optuna's side of a sweep: the database, the samplers and the pruner.

Optuna is imported here, lazily: it is the ``sweep`` extra.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from gradwise._optional import require
from gradwise.errors import ConfigError
from gradwise.sweep._config import SweepConfig, SweepSpec
from gradwise.sweep._space import Space

HEARTBEAT_S = 20  # a running trial writes a heartbeat this often...
GRACE_S = 120  # ...and is failed (then retried) when none came for this long


def optuna_module() -> Any:
    """Import Optuna (the ``sweep`` extra) with a clear error when it is missing."""
    return require("optuna", "sweep", "gradwise sweep")


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's own INFO lines and experimental-feature warnings, off while a sweep runs."""
    optuna = optuna_module()
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def storage_url(cfg: SweepConfig, storage: str | None) -> str:
    """The database URL: the argument, else ``sweep.storage``, else ``RUN_DIR/study.db``."""
    url = storage or cfg.sweep.storage
    if url is None:
        path = (cfg.run_dir / "study.db").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if "://" not in url:
        raise ConfigError(
            f"storage must be a database URL such as sqlite:///path/study.db or "
            f"postgresql://user:password@host/db, got {url!r}"
        )
    return url


def shown_url(url: str) -> str:
    """The URL with its password hidden, for reports and messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL sqlalchemy cannot parse is shown as is
        return url


RETRIES = 12  # tries; the 11 waits between them: 0.02 s, doubling, 41 s in all


def retrying(fn: Any, what: str) -> Any:
    """Run ``fn``; retry while another process holds the SQLite lock or creates the tables.

    Workers started together on a fresh database race to create its tables,
    and all but one fail once; the first wait is short (20 ms, then doubling),
    so the losers' first trials start about when the winner's does.
    """
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(RETRIES):
        try:
            return fn()
        except (OperationalError, IntegrityError):
            if attempt == RETRIES - 1:
                raise
            time.sleep(0.02 * 2**attempt)
    raise RuntimeError(f"{what}: unreachable")


def driver_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` go through psycopg 3 (SQLAlchemy's default is psycopg2).

    >>> driver_url("postgresql://u:pw@db.example:5432/sweeps")
    'postgresql+psycopg://u:pw@db.example:5432/sweeps'
    >>> driver_url("sqlite:///runs/sw/study.db")
    'sqlite:///runs/sw/study.db'
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def open_storage(url: str) -> Any:
    """An Optuna RDB storage with heartbeats, so trials of a killed worker are retried.

    A plain ``postgresql://`` URL uses psycopg 3 (``pip install 'gradwise[postgres]'``).
    """
    optuna = optuna_module()
    url = driver_url(url)
    storages = optuna.storages
    retry_cls = getattr(storages, "RetryHeartbeatStaleTrialCallback", None)
    retry_cls = retry_cls or storages.RetryFailedTrialCallback
    params = inspect.signature(storages.RDBStorage).parameters
    key = "heartbeat_stale_trial_callback"
    key = key if key in params else "failed_trial_callback"
    # sqlite waits for a lock instead of failing at once when workers write together
    engine = (
        {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )
    from gradwise._steps import step_progress

    try:
        with step_progress(f"opening storage {shown_url(url)}"):
            return retrying(
                lambda: storages.RDBStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    **{key: retry_cls(max_retry=2)},
                ),
                "storage",
            )
    except ImportError as exc:
        raise ConfigError(
            f"storage {shown_url(url)}: the database driver is not installed ({exc.__cause__ or exc}); "
            "for PostgreSQL: pip install 'psycopg[binary]' (the gradwise[postgres] extra)"
        ) from None
    except Exception as exc:
        if type(exc).__module__.startswith("sqlalchemy"):
            raise ConfigError(
                f"storage {shown_url(url)}: cannot open the database ({exc})"
            ) from None
        raise


class TrialSeeded:
    """A sampler whose draws for trial k depend only on ``(seed, k)`` and the history.

    Optuna's samplers hold one random state per process, so two workers with
    the same seed, or a resumed sweep, would repeat each other's draws. Here
    each trial gets a fresh inner sampler seeded from its (storage-wide,
    unique) trial number: parallel workers draw different points and a serial
    sweep is reproducible.
    """

    def __init__(self, make: Any, seed: int) -> None:
        self._make, self._seed = make, seed
        self._inner: dict[int, Any] = {}

    def _for(self, trial: Any) -> Any:
        n = trial.number
        if n not in self._inner:
            seed = int(np.random.SeedSequence([self._seed, n]).generate_state(1)[0])
            self._inner[n] = self._make(seed)
        return self._inner[n]

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, space: dict[str, Any]) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, space)

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        return self._for(trial).sample_independent(study, trial, name, dist)

    def before_trial(self, study: Any, trial: Any) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        inner = self._inner.pop(trial.number, None)
        if inner is not None:
            inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        pass  # the seed of a trial is its number


def make_sampler(spec: SweepSpec) -> Any:
    optuna = optuna_module()
    samplers = optuna.samplers
    if spec.method == "grid":
        # the same seed in every worker: trial k is grid point k in all of them
        return samplers.GridSampler(Space(spec).grid(), seed=spec.seed)
    base = type("TrialSeededSampler", (TrialSeeded, samplers.BaseSampler), {})
    if spec.method == "random":
        return base(lambda s: samplers.RandomSampler(seed=s), spec.seed)
    return base(lambda s: samplers.TPESampler(seed=s), spec.seed)


def make_pruner(spec: SweepSpec) -> Any:
    optuna = optuna_module()
    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=spec.prune_startup, n_warmup_steps=spec.prune_warmup
    )
