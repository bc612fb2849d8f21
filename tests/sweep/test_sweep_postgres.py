"""Sweeps on a real PostgreSQL server (a throwaway one, see _postgres.py)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from gradwise.cli import app
from gradwise.errors import ConfigError
from gradwise.sweep import report_sweep, run_sweep_file
from gradwise.sweep._storage import driver_url, open_storage

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (the postgres extra)")
WORKER = Path(__file__).with_name("_pg_worker.py")


def test_the_throwaway_server_answers(postgres_db):
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        assert conn.execute("SELECT current_database()").fetchone()[0] == (
            "test_the_throwaway_server_answers"
        )


def random_raw(base, name, runs_dir, n=3):
    params = {"optimizer.lr": {"low": 1e-3, "high": 0.3, "log": True}}
    spec = {"method": "random", "n_trials": n, "params": params, "seed": 3, "pruner": "none"}
    raw = base(sweep=spec)
    raw.update(name=name, runs_dir=str(runs_dir))
    return raw


def finished(study):
    return sorted(
        (t.number, t.params["optimizer.lr"], t.value)
        for t in study.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.COMPLETE
    )


@pytest.mark.slow
def test_cli_sweep_on_postgresql_equals_the_sqlite_sweep(tmp_path, no_trial_reports, base,
                                                          postgres_db):  # fmt: skip
    # the same sweep twice: on the server through `gradwise sweep --storage`, and on SQLite
    pg_yaml, lite_yaml = tmp_path / "pg.yaml", tmp_path / "lite.yaml"
    pg_yaml.write_text(yaml.safe_dump(random_raw(base, "pg", tmp_path / "runs_pg")))
    lite_yaml.write_text(yaml.safe_dump(random_raw(base, "pg", tmp_path / "runs_lite")))
    out = CliRunner().invoke(app, ["sweep", str(pg_yaml), "--storage", postgres_db])
    assert out.exit_code == 0, out.output
    assert "trials run now: 3, in study: 3" in out.output
    assert run_sweep_file(lite_yaml, []).ran == 3
    # the study lives on the server (plain postgresql:// went through psycopg 3), not in a file
    assert not (tmp_path / "runs_pg" / "pg" / "study.db").exists()
    storage = open_storage(postgres_db)
    assert storage.engine.dialect.driver == "psycopg"
    on_pg = optuna.load_study(study_name="pg", storage=storage)
    on_lite = optuna.load_study(
        study_name="pg", storage=f"sqlite:///{tmp_path / 'runs_lite' / 'pg' / 'study.db'}"
    )
    pg, lite = finished(on_pg), finished(on_lite)
    assert [n for n, _, _ in pg] == [0, 1, 2]
    assert [(n, lr) for n, lr, _ in pg] == [(n, lr) for n, lr, _ in lite]
    assert [v for _, _, v in pg] == pytest.approx([v for _, _, v in lite], abs=1e-6)
    # `gradwise report` of the server's study reads it back
    again = report_sweep(tmp_path / "runs_pg" / "pg", storage=postgres_db)
    assert again.ran == 0 and len(again.trials) == 3 and again.storage == postgres_db


def test_postgresql_url_goes_through_psycopg3():
    assert driver_url("postgresql://u:pw@h:5432/db") == "postgresql+psycopg://u:pw@h:5432/db"
    assert driver_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert driver_url("postgresql+psycopg2://h/db") == "postgresql+psycopg2://h/db"
    assert driver_url("sqlite:///x.db") == "sqlite:///x.db"


def test_missing_driver_names_the_postgres_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    with pytest.raises(ConfigError, match=r"psycopg\[binary\].*gradwise\[postgres\]") as err:
        open_storage("postgresql://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(err.value)


def start_worker(cfg_json, url, barrier, me, n, *role):
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(cfg_json), url, str(barrier), str(me), str(n), *role],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_workers_on_separate_machines_share_a_study_and_retry_a_killed_one(
    tmp_path, base, postgres_db
):
    raw = random_raw(base, "shared", tmp_path / "runs", n=6)
    cfg_json = tmp_path / "cfg.json"
    cfg_json.write_text(json.dumps(raw))
    # a worker takes trial 0 and is killed with SIGKILL in the middle of it
    barrier = tmp_path / "victim"
    barrier.mkdir()
    victim = start_worker(cfg_json, postgres_db, barrier, 0, 1, "victim")
    deadline = time.time() + 120
    while not (barrier / "victim-running").exists():
        assert victim.poll() is None and time.time() < deadline, victim.stderr.read()
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    # two workers on two other "machines" run the rest and, once its heartbeat is stale, trial 0
    barrier = tmp_path / "workers"
    barrier.mkdir()
    procs = [start_worker(cfg_json, postgres_db, barrier, i, 2) for i in (1, 2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    study = optuna.load_study(study_name="shared", storage=open_storage(postgres_db))
    trials = study.get_trials(deepcopy=False)
    # a worker that lost the race for the last slot gave its trial up at once (marked surplus)
    surplus = [t for t in trials if t.user_attrs.get("surplus")]
    assert all(t.state.name == "PRUNED" and not t.params for t in surplus)
    trials = [t for t in trials if not t.user_attrs.get("surplus")]
    states = sorted(t.state.name for t in trials)
    assert states == ["COMPLETE"] * 6 + ["FAIL"]
    killed = next(t for t in trials if t.state.name == "FAIL")
    assert killed.number == 0 and killed.user_attrs["worker"].startswith("node0:")
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == 0)
    assert retry.state.name == "COMPLETE" and retry.params == killed.params
    # no trial lost or duplicated: six points, each run once to the end, by the two survivors
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len({t.params["optimizer.lr"] for t in done}) == 6
    assert {t.user_attrs["worker"].split(":")[0] for t in done} <= {"node1", "node2"}
    assert sum(o["ran"] for o in outs) == 6
    assert all(o["trials"] == 7 for o in outs)
