"""Sweeps on a real PostgreSQL server (a throwaway one, see _postgres.py)."""

import pytest

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (the postgres extra)")


def test_the_throwaway_server_answers(postgres_db):
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
        assert conn.execute("SELECT current_database()").fetchone()[0] == (
            "test_the_throwaway_server_answers"
        )
