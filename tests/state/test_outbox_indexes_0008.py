"""Migration 0008: the outbox keeps one index for claims and counts, ``ix_outbox_group``
ending with ``id``; ``ix_outbox_claim``, which no query used, is gone. A claim of one group
reads its due rows in claim order through the group index (no sort, on Postgres), and 0008
downgrades and upgrades on both databases without losing a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, text

from state.outbox import _claim_statement
from state.store import NewOutboxRow, StateStore, schema_head
from tests.migrations import migrate

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GROUP = ["status", "system", "object", "operation", "next_attempt_at"]


def _indexes(store: StateStore) -> dict[str, list[str]]:
    with store.engine.connect() as connection:
        return {ix["name"]: list(ix["column_names"])
                for ix in inspect(connection).get_indexes("outbox") if ix["name"]}


def _rows(count: int) -> list[NewOutboxRow]:
    groups = (("hubspot", "contacts"), ("salesforce", "Lead"))
    return [NewOutboxRow(*groups[i % 2], "update", {"n": i}, f"k{i}", str(i), i)
            for i in range(count)]


def _enqueue(store: StateStore, count: int) -> None:
    rows = _rows(count)
    for start in range(0, count, 1_000):   # a chunk's rows at a time, due a second apart
        store.outbox.enqueue(rows[start:start + 1_000],
                             NOW - timedelta(seconds=count // 1_000 - start // 1_000))


def test_the_group_index_ends_with_id_and_the_claim_index_is_gone(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    found = _indexes(store)
    store.dispose()
    assert found.get("ix_outbox_group") == [*GROUP, "id"]
    assert "ix_outbox_claim" not in found


def test_0008_downgrades_and_upgrades_again_keeping_every_row(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    _enqueue(store, 30)
    try:
        migrate(store, "0007", down=True)
        down = _indexes(store)
        counted_down = store.outbox.counts()
        assert store.upgrade() == schema_head()
        up = _indexes(store)
        counted_up = store.outbox.counts()
        claimed = store.outbox.claim("h", 5, system="salesforce", object_name="Lead",
                                     operation="update", claim_seconds=60, now=NOW)
    finally:
        store.dispose()
    assert down["ix_outbox_claim"] == ["status", "next_attempt_at", "id"]
    assert down["ix_outbox_group"] == GROUP
    assert up["ix_outbox_group"] == [*GROUP, "id"]
    assert counted_down == counted_up == {"pending": 30}
    # the group's first five due rows, in the order they came due (then by id)
    assert [item.idempotency_key for item in claimed] == ["k1", "k3", "k5", "k7", "k9"]


def test_a_claim_reads_its_group_in_claim_order_with_no_sort(postgres_url: str) -> None:
    store = StateStore(postgres_url)
    store.upgrade()
    _enqueue(store, 20_000)
    statement = _claim_statement(("object", "operation", "system"), expired=False)
    values = {"holder": "h", "now": NOW, "set_now": NOW, "until": NOW, "most": 200,
              "group_system": "hubspot", "group_object": "contacts",
              "group_operation": "update"}
    try:
        with store.engine.connect() as connection:
            connection.execute(text("ANALYZE outbox"))
            compiled = statement.compile(dialect=store.engine.dialect)
            plan = "\n".join(connection.exec_driver_sql(
                "EXPLAIN " + str(compiled), {**compiled.params, **values}).scalars())
            connection.rollback()
    finally:
        store.dispose()
    assert "Index Scan using ix_outbox_group" in plan, plan
    assert "Sort" not in plan, plan
