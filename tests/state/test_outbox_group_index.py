"""A claim and the due counts read one group's rows through the group index, not every due
row of every group (a backfill's HubSpot backlog under each Salesforce claim)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from state import models as m
from state.store import NewOutboxRow, StateStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _plan(store: StateStore, query: Any) -> str:
    sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        return " / ".join(row[3] for row in connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + sql))


def test_a_claim_of_one_group_searches_that_group_only(sqlite_url: str) -> None:
    store = StateStore(sqlite_url)
    store.upgrade()
    t = m.OutboxRow
    claim = (select(t.id).where(t.status == "pending", t.next_attempt_at <= NOW,
                                t.system == "salesforce", t.object == "Lead",
                                t.operation == "update")
             .order_by(t.next_attempt_at, t.id).limit(1000))
    assert "ix_outbox_group (status=? AND system=? AND object=? AND operation=?" in \
        _plan(store, claim)


def test_due_counts_read_the_index_alone(sqlite_url: str) -> None:
    store = StateStore(sqlite_url)
    store.upgrade()
    rows = [NewOutboxRow(system, obj, "update", {"n": i}, f"{system}{i}", str(i), i)
            for system, obj, n in (("hubspot", "contacts", 7), ("salesforce", "Lead", 3))
            for i in range(n)]
    store.outbox.enqueue(rows, NOW - timedelta(seconds=5))
    assert store.outbox.due_counts(NOW) == {("hubspot", "contacts", "update"): 7,
                                            ("salesforce", "Lead", "update"): 3}
    claimed = store.outbox.claim("h", 2, system="hubspot", object_name="contacts",
                                 operation="update", claim_seconds=1, now=NOW)
    later = NOW + timedelta(seconds=10)    # the two claims expired: due again
    assert store.outbox.due_counts(later) == {("hubspot", "contacts", "update"): 7,
                                              ("salesforce", "Lead", "update"): 3}
    assert len(claimed) == 2
    assert store.outbox.due_counts(NOW) == {("hubspot", "contacts", "update"): 5,
                                            ("salesforce", "Lead", "update"): 3}
    t = m.OutboxRow
    pending = select(t.system, t.object, t.operation).where(
        t.status == "pending", t.next_attempt_at <= NOW).group_by(t.system, t.object,
                                                                  t.operation)
    assert "COVERING INDEX ix_outbox_group" in _plan(store, pending)
