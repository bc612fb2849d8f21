"""Sweeps on a real PostgreSQL server (a throwaway one, see _postgres.py)."""

import sys

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from gradwise.cli import app
from gradwise.errors import ConfigError
from gradwise.sweep import report_sweep, run_sweep_file
from gradwise.sweep._storage import driver_url, open_storage

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (the postgres extra)")


def test_the_throwaway_server_answers(postgres_db):
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        assert conn.execute("SELECT current_database()").fetchone()[0] == (
            "test_the_throwaway_server_answers"
        )


def random_raw(base, name, runs_dir, n=3):
    params = {"optimizer.lr": {"low": 1e-3, "high": 0.3, "log": True}}
    raw = base(sweep={"method": "random", "n_trials": n, "params": params, "seed": 3})
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
