"""On Postgres a commit of evaluations compresses its large values with lz4 (common.
compress_fast): the server's default, pglz, took twice the CPU for each decision's reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from state.store import StateStore

T0 = datetime(2026, 3, 4, tzinfo=UTC)


def _decision(pid: int) -> dict[str, object]:
    reasons = {"rules": [{"name": f"rule {n}", "points": n, "why": f"matched {n} " * 8}
                         for n in range(60)]}   # ~5 KB of JSON: past the TOAST threshold
    return {"person_id": pid, "grade": "A", "score": 1.5, "segment": None, "stage": None,
            "owner": None, "track": None, "mql_date": None, "reasons": reasons,
            "evaluated_at": T0}


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
        store.commit_evaluation([], [_decision(1), _decision(2)], {}, {}, T0)
        with store.engine.connect() as connection:
            methods = connection.scalars(text(
                "SELECT pg_column_compression(reasons) FROM decisions")).all()
            # SET LOCAL: the connection's own setting is back once the commit ended
            assert connection.scalar(text("SHOW default_toast_compression")) == default
        assert methods == ["lz4", "lz4"]
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
