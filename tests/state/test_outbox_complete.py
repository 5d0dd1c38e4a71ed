"""Completing claimed rows in bulk: each outcome's values, the latency of each write done now,
nothing for a row no longer in flight (a second settlement never undoes the first)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from state import models as m
from state.outbox import NewOutboxRow, OutboxResult
from state.store import StateStore

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def test_a_mixed_batch_settles_each_row_once(store: StateStore) -> None:
    store.outbox.enqueue([NewOutboxRow("hubspot", "contacts", "update", {"n": i}, f"k{i}",
                                       remote_id=str(i), changed_at=T0 - timedelta(seconds=i))
                          for i in range(6)], now=T0)
    items = store.outbox.claim("a", 10, system="hubspot", object_name="contacts",
                               operation="update", now=T0)
    ids = [item.id for item in items]
    store.outbox.release(ids[5:], now=T0)          # no longer in flight: left alone below
    done_at = T0 + timedelta(minutes=1)
    results = [OutboxResult(ids[0], "ok", result_id="r0"),
               OutboxResult(ids[1], "ok", result_id=None),
               OutboxResult(ids[2], "retryable", code="RATE", message="slow\x00down"),
               OutboxResult(ids[3], "retryable", code="RATE", retry_at=T0 + timedelta(hours=1)),
               OutboxResult(ids[4], "rejected", code="INVALID", message="no"),
               OutboxResult(ids[5], "ok", result_id="late")]
    store.outbox.complete(results, now=done_at)
    store.outbox.complete(results[:1], now=done_at + timedelta(minutes=1))   # again
    t = m.OutboxRow
    with store.sessions.read() as session:
        rows = {r.id: r for r in session.scalars(select(t))}
        latency = sorted(session.scalars(select(m.ChangeLatency.seconds)))
    assert [rows[i].status for i in ids] == ["done", "done", "pending", "pending", "dead",
                                             "pending"]
    assert rows[ids[0]].result_id == "r0" and rows[ids[5]].result_id is None
    assert rows[ids[2]].next_attempt_at == done_at + timedelta(seconds=5)   # first backoff
    assert rows[ids[2]].last_error == "slowdown" and rows[ids[2]].error_code == "RATE"
    assert rows[ids[3]].next_attempt_at == T0 + timedelta(hours=1)
    assert rows[ids[4]].error_code == "INVALID" and rows[ids[4]].claimed_by is None
    assert all(rows[i].updated_at == done_at for i in ids[:5])
    assert latency == [60.0, 61.0]   # the two writes done, once each
