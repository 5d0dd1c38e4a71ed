"""`OutboxStore.counts` of named statuses: the same figures as counting every row, for those
statuses only, read as a range of the index by status (never a scan of the done rows, which
grow with every write ever made), on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from state.common import IN_LIST
from state.outbox import BACKLOG, in_flight_persons
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


def test_in_flight_persons_by_the_worst_keys(store: StateStore) -> None:
    """The persons whose update under one of these keys is in flight: the keys one parameter
    (NUL, unicode, quotes, more than an IN list took), rows of no person left out."""
    odd = ["é😀 ünï", "x'y\"z\\", "%s %(ids)s ?", "[\"]\"", "K" * 200]
    keys = [*odd, *(f"k:{n:05d}" for n in range(2 * IN_LIST + 3))]
    rows = [NewOutboxRow("salesforce", "Lead", "update", {"Rating": "A"}, key,
                         remote_id=f"00Q{n}", person_id=None if n == 1 else n + 1)
            for n, key in enumerate(keys)]
    store.outbox.enqueue([*rows, NewOutboxRow("salesforce", "Lead", "update", {}, "rest",
                                              remote_id="r", person_id=10 ** 6)], now=T0)
    store.outbox.claim("a", len(keys), now=T0)   # every row but the last: in flight
    with store.sessions.read() as session:
        found = in_flight_persons(session, [*keys, "rest", "K" * 199, "nul\x00"])
        assert found == sorted(n + 1 for n in range(len(keys)) if n != 1)
        assert in_flight_persons(session, []) == []
