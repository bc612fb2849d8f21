"""The database side of a sweep: retries while workers race to create the tables."""

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from gradwise.sweep import _storage


def test_retrying_waits_briefly_then_doubles(monkeypatch):
    slept = []
    monkeypatch.setattr(_storage.time, "sleep", slept.append)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 4:  # another worker is creating the tables
            raise IntegrityError("CREATE TABLE", {}, Exception("duplicate key"))
        return "storage"

    assert _storage.retrying(flaky, "storage") == "storage"
    assert slept == pytest.approx([0.02, 0.04, 0.08])


def test_retrying_gives_up_after_its_budget(monkeypatch):
    slept = []
    monkeypatch.setattr(_storage.time, "sleep", slept.append)

    def locked():
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    with pytest.raises(OperationalError):
        _storage.retrying(locked, "study")
    assert len(slept) == _storage.RETRIES - 1
    assert sum(slept) == pytest.approx(0.02 * (2 ** (_storage.RETRIES - 1) - 1))
    assert 30 < sum(slept) < 60  # as patient as before (32 s), in more, shorter waits


def test_other_errors_are_not_retried(monkeypatch):
    slept = []
    monkeypatch.setattr(_storage.time, "sleep", slept.append)

    def broken():
        raise ValueError("not a database error")

    with pytest.raises(ValueError):
        _storage.retrying(broken, "study")
    assert slept == []
