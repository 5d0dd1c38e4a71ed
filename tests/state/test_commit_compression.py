"""On Postgres a commit of evaluations compresses its large values with lz4 (common.
compress_fast): the server's default, pglz, took twice the CPU for each decision's reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from state.store import StateStore

T0 = datetime(2026, 3, 4, tzinfo=UTC)


def _decision(pid: int) -> dict[str, object]:
    reasons = {"rules": [{"name": f"rule {n}", "points": n, "why": f"matched {n} " * 8}
                         for n in range(60)]}   # ~5 KB of JSON: past the TOAST threshold
    return {"person_id": pid, "grade": "A", "score": 1.5, "segment": None, "stage": None,
            "owner": None, "track": None, "mql_date": None, "reasons": reasons,
            "evaluated_at": T0}


def _statements(store: StateStore, answer_lz4: bool | None = None) -> list[tuple[Any, str]]:
    """Each statement the store runs from now on, with the DBAPI connection it ran on.
    ``answer_lz4``: what the server is made to answer when asked whether it has lz4."""
    seen: list[tuple[Any, str]] = []

    @event.listens_for(store.engine, "before_cursor_execute", retval=True)
    def _seen(connection: Any, _cursor: Any, sql: str, parameters: Any, _context: Any,
              _many: bool) -> tuple[str, Any]:
        seen.append((connection.connection.dbapi_connection, sql))
        if answer_lz4 is not None and "enumvals" in sql:
            sql = f"SELECT {str(answer_lz4).lower()}"
        return sql, parameters

    return seen


def _compression(store: StateStore) -> list[str]:
    with store.engine.connect() as connection:
        return list(connection.scalars(text(
            "SELECT pg_column_compression(reasons) FROM decisions ORDER BY person_id")))


@pytest.mark.postgres
def test_the_reasons_are_compressed_with_lz4_and_read_back_the_same(postgres_url: str) -> None:
    store = StateStore(postgres_url)
    store.upgrade()
    try:
        with store.engine.connect() as connection:
            if not connection.scalar(text(
                    "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                    "WHERE name = 'default_toast_compression'")):
                pytest.skip("this server was built without lz4")
            default = connection.scalar(text("SHOW default_toast_compression"))
        seen = _statements(store)
        store.commit_evaluation([], [_decision(1), _decision(2)], {}, {}, T0)
        [commits] = {dbapi for dbapi, sql in seen if "SET LOCAL" in sql}
        # SET LOCAL: the commit's own connection has its setting back once the commit ended
        with commits.cursor() as cursor:
            cursor.execute("SHOW default_toast_compression")
            assert cursor.fetchone() == (default,)
        commits.rollback()
        assert _compression(store) == ["lz4", "lz4"]
        assert store.decisions.of([1])[1]["reasons"] == _decision(1)["reasons"]
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_server_without_lz4_keeps_its_own_compression(postgres_url: str) -> None:
    """A server built without lz4 (before Postgres 14, or built so) would refuse the
    setting, failing every commit: it is not asked for, and the values are compressed as
    the server does by default."""
    store = StateStore(postgres_url)
    store.upgrade()
    try:
        with store.engine.connect() as connection:
            default = connection.scalar(text("SHOW default_toast_compression"))
        seen = _statements(store, answer_lz4=False)
        store.commit_evaluation([], [_decision(1), _decision(2)], {}, {}, T0)
        store.commit_evaluation([], [_decision(3)], {}, {}, T0)   # asked once per engine
        assert len([sql for _, sql in seen if "enumvals" in sql]) == 1
        assert not [sql for _, sql in seen if "SET LOCAL" in sql]
        assert _compression(store) == [default] * 3
        assert store.decisions.of([1])[1]["reasons"] == _decision(1)["reasons"]
    finally:
        store.dispose()


def test_sqlite_commits_as_before(sqlite_url: str) -> None:
    store = StateStore(sqlite_url)
    store.upgrade()
    try:
        store.commit_evaluation([], [_decision(1)], {}, {}, T0)
        assert store.decisions.of([1])[1]["reasons"] == _decision(1)["reasons"]
    finally:
        store.dispose()
