"""State DB faults end in one line naming the DB, never in a traceback or a message with SQL or
row values; values the databases refuse (NUL, lone surrogates, NaN) are cleaned on the way in."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from state import dberrors
from state.dberrors import (
    StateCorrupt,
    StateDBError,
    StateLocked,
    StateReadOnly,
    StateSchemaMismatch,
    StateUnavailable,
)
from state.store import CursorState, MirrorRow, StateStore, schema_head
from syncagent.errors import FatalError, RetryableError
from tests.shown import one_line_each, shown

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SECRET_VALUE = "row-value-that-must-not-leak"


def _one_line_without_sql(error: StateDBError, *, names: str) -> None:
    text = f"{shown(error)} {error.as_dict()}"
    assert one_line_each(error)
    assert names in error.message
    for leaked in ("INSERT", "UPDATE", "SELECT", "key_value", SECRET_VALUE, "[SQL"):
        assert leaked not in text, f"{leaked!r} in {text!r}"


def _fresh(tmp_path: Path) -> tuple[StateStore, Path]:
    path = tmp_path / "state.db"
    store = StateStore(f"sqlite:///{path}")
    store.upgrade()
    return store, path


def test_a_file_that_is_not_a_database_is_named_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this was never a database " * 200)
    with pytest.raises(StateCorrupt) as caught:
        StateStore(f"sqlite:///{path}").require_schema()
    assert isinstance(caught.value, FatalError)
    _one_line_without_sql(caught.value, names=str(path))


def test_a_truncated_database_is_named_in_one_line(tmp_path: Path) -> None:
    store, path = _fresh(tmp_path)
    for n in range(300):
        store.runs.set_value(f"k{n}", {"v": SECRET_VALUE * 20})
    store.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    reopened = StateStore(f"sqlite:///{path}")
    with pytest.raises(StateCorrupt) as caught:
        for n in range(300):
            reopened.runs.get_value(f"k{n}")
    _one_line_without_sql(caught.value, names=str(path))


def test_a_read_only_database_refuses_writes_in_one_line(tmp_path: Path) -> None:
    store, path = _fresh(tmp_path)
    store.dispose()
    read_only = StateStore(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert read_only.runs.get_value("absent") is None
    with pytest.raises(StateReadOnly) as caught:
        read_only.runs.set_value("name", SECRET_VALUE)
    _one_line_without_sql(caught.value, names=str(path))


def test_a_writer_holding_the_lock_gives_a_retryable_line_after_a_bounded_wait(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dberrors, "SQLITE_BUSY_SECONDS", 0.3)
    _store, path = _fresh(tmp_path)
    store = StateStore(f"sqlite:///{path}")  # opened with the short wait
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StateLocked) as caught:
            store.runs.set_value("name", SECRET_VALUE)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(caught.value, RetryableError)
    _one_line_without_sql(caught.value, names=str(path))
    store.runs.set_value("name", "after the lock")  # the next attempt simply works
    assert store.runs.get_value("name") == "after the lock"


def test_a_db_migrated_by_a_newer_syncagent_is_refused_naming_both_revisions(
        state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    with store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    for attempt in (store.require_schema, store.upgrade):
        with pytest.raises(StateSchemaMismatch) as caught:
            attempt()
        assert "9999_future" in caught.value.message and schema_head() in caught.value.message
    store.dispose()


def test_sync_refuses_a_newer_db_with_one_line(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from syncagent.cli import app

    monkeypatch.chdir(tmp_path)  # well-formed credentials; the DB is refused before any call
    for name, value in {"SALESFORCE__AUTH": "session",
                        "SALESFORCE__SESSION_ID": "00D000000000001!" + "A" * 40,
                        "SALESFORCE__INSTANCE_URL": "https://acme.my.salesforce.com",
                        "HUBSPOT__ACCESS_TOKEN": "pat-na1-" + "0" * 36}.items():
        monkeypatch.setenv(f"SYNCAGENT_{name}", value)
    store, path = _fresh(tmp_path)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    result = CliRunner().invoke(app, ["sync", "--once", "--state", f"sqlite:///{path}"])
    assert result.exit_code == 1
    assert "9999_future" in result.output and "Traceback" not in result.output


@pytest.mark.postgres
def test_a_lost_postgres_connection_is_retryable_and_the_next_call_reconnects(
        postgres_url: str) -> None:
    store = StateStore(postgres_url)
    store.upgrade()
    store.runs.set_value("before", 1)
    with store.engine.connect() as killer, pytest.raises(StateUnavailable) as caught, \
            store.sessions.write() as session:
        # Kill the backend mid-transaction, as a server restart or a failover would.
        victim = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        killer.exec_driver_sql(f"SELECT pg_terminate_backend({int(victim)})")
        killer.commit()
        session.connection().exec_driver_sql("SELECT 1")
    _one_line_without_sql(caught.value, names="postgresql")
    store.runs.set_value("after", 2)  # a fresh connection from the pool
    assert store.runs.get_value("after") == 2
    store.dispose()


def test_values_the_databases_refuse_are_cleaned_on_the_way_in(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    fields = {"Id": "00Q1", "Company": "Acme\x00 Ltd", "Title": "VP \ud800 Sales",
              "Score": math.nan, "Nested": {"a\x00": [math.inf, "x\udfff"]}}
    store.commit_page("sf.Lead", [MirrorRow("salesforce", "Lead", "00Q1", fields, T0)], [],
                      CursorState(T0, "00Q1", frozenset({"00Q1"})))
    store.runs.set_value("note\x00", {"text": "a\x00b", "n": math.nan})
    (row,) = store.mirror.records("salesforce", "Lead")
    assert row.fields["Company"] == "Acme Ltd"
    assert row.fields["Title"] == "VP \ufffd Sales"
    assert row.fields["Score"] is None
    assert row.fields["Nested"] == {"a": [None, "x\ufffd"]}
    assert store.runs.get_value("note") == {"text": "ab", "n": None}
    store.dispose()


def test_malformed_json_in_one_value_is_not_taken_for_a_damaged_database(
        tmp_path: Path) -> None:
    """SQLite's JSON functions say "malformed JSON" of one bad value: that refuses the
    statement, it does not mean the file is damaged (which would stop every cycle for good)."""
    store, _path = _fresh(tmp_path)
    with pytest.raises(StateDBError) as caught, store.engine.connect() as connection:
        connection.exec_driver_sql("SELECT json_extract('{not json', '$.a')")
    assert not isinstance(caught.value, StateCorrupt)
    assert not getattr(caught.value, "needs_a_person", False)


@pytest.mark.parametrize("text", ["database disk image is malformed",
                                  "malformed database schema (t) - near \"x\""])
def test_sqlites_damaged_file_texts_are_corrupt(text: str) -> None:
    error = dberrors.translate(sqlite3.DatabaseError(text), label="state.db",
                               is_disconnect=False)
    assert isinstance(error, StateCorrupt)
    assert error.needs_a_person
