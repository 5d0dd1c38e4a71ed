"""`OutboxStore.counts` of named statuses: the same figures as counting every row, for those
statuses only, read as a range of the index by status (never a scan of the done rows, which
grow with every write ever made), on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from state.outbox import BACKLOG
from state.store import NewOutboxRow, OutboxResult, StateStore

T0 = datetime(2026, 10, 3, 8, 0, tzinfo=UTC)


def _rows(n: int) -> list[NewOutboxRow]:
    return [NewOutboxRow("salesforce", "Lead", "update", {"Rating": f"v{i}"},
                         f"r:{i}:update", remote_id=f"00Q{i:03d}", person_id=i + 1)
            for i in range(n)]


def test_counts_of_named_statuses_are_the_full_counts_cut_to_them(store: StateStore) -> None:
    assert store.outbox.counts(BACKLOG) == {} == store.outbox.counts()
    store.outbox.enqueue(_rows(10), now=T0)
    claimed = store.outbox.claim("a", 6, now=T0)
    store.outbox.complete([OutboxResult(claimed[0].id, "ok", result_id="x"),
                           OutboxResult(claimed[1].id, "ok", result_id="y"),
                           OutboxResult(claimed[2].id, "rejected", code="Bad", message="m")],
                          now=T0)
    every = store.outbox.counts()
    assert every == {"done": 2, "dead": 1, "in_flight": 3, "pending": 4}
    assert store.outbox.counts(BACKLOG) == {"dead": 1, "in_flight": 3, "pending": 4}
    assert store.outbox.counts(["done", "done", "no such status"]) == {"done": 2}
    assert store.outbox.counts([]) == {} and store.outbox.counts(iter(())) == {}


def test_named_statuses_are_read_through_the_index_by_status(store: StateStore) -> None:
    """The plan: a search of ix_outbox_group by status (SQLite), an index condition on
    status (Postgres, with a sequential scan ruled out: an empty table's plan is free)."""
    query = ("SELECT status, count(*) FROM outbox WHERE status IN ('dead', 'in_flight', "
             "'pending') GROUP BY status")
    with store.sessions.read() as session:
        if store.dialect == "sqlite":
            plan = " ".join(str(row[-1]) for row in session.execute(
                text(f"EXPLAIN QUERY PLAN {query}")))
            assert "SEARCH" in plan and "ix_outbox_group" in plan, plan
        else:
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(row[0] for row in session.execute(text(f"EXPLAIN {query}")))
            assert "ix_outbox_group" in plan and "Index Cond" in plan, plan
