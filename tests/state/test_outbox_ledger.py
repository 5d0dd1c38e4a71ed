"""Outbox settling, the dead-letter ledger and leases by the database's clock, on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from state.deadletters import error_field
from state.store import NewOutboxRow, OutboxResult, StateStore

T0 = datetime(2026, 10, 3, 8, 0, tzinfo=UTC)


def _rows(n: int, person: bool = True, prefix: str = "r") -> list[NewOutboxRow]:
    return [NewOutboxRow("salesforce", "Lead", "update", {"Rating": f"v{i}"},
                         f"{prefix}:{i}:update", remote_id=f"00Q{i:03d}",
                         person_id=(i + 1) if person else None) for i in range(n)]


def _reject(store: StateStore, code: str, message: str, now: datetime = T0) -> None:
    items = store.outbox.claim("a", 10_000, now=now)
    store.outbox.complete([OutboxResult(i.id, "rejected", code=code, message=message)
                           for i in items], now=now)


def test_a_released_claim_is_due_at_once_and_the_attempt_is_not_counted(
    store: StateStore,
) -> None:
    store.outbox.enqueue(_rows(3), now=T0)
    claimed = store.outbox.claim("a", 10, now=T0)
    assert store.outbox.claims(now=T0) == {"in_flight": 3, "claims_expired": 0}
    assert store.outbox.release([i.id for i in claimed], code="AuthError", now=T0) == 3
    again = store.outbox.claim("b", 10, now=T0)
    assert [i.attempts for i in again] == [1, 1, 1]


def test_settling_a_batch_never_undoes_a_result_already_recorded(store: StateStore) -> None:
    store.outbox.enqueue(_rows(2), now=T0)
    first, second = store.outbox.claim("a", 10, now=T0)
    store.outbox.complete([OutboxResult(first.id, "ok", result_id="x")], now=T0)
    store.outbox.complete([OutboxResult(i, "retryable", code="Boom") for i in
                           (first.id, second.id)], now=T0)
    assert store.outbox.counts() == {"done": 1, "pending": 1}


def test_expired_claims_are_counted_apart_and_claimed_again(store: StateStore) -> None:
    store.outbox.enqueue(_rows(4), now=T0)
    store.outbox.claim("killed", 10, claim_seconds=45, now=T0)
    later = T0 + timedelta(seconds=46)
    assert store.outbox.claims(now=later) == {"in_flight": 4, "claims_expired": 4}
    assert len(store.outbox.claim("next", 10, now=later)) == 4
    assert store.outbox.claims(now=later) == {"in_flight": 4, "claims_expired": 0}


def test_dead_letters_group_by_system_code_and_field_with_true_totals(
    store: StateStore,
) -> None:
    store.outbox.enqueue(_rows(1_312), now=T0)
    _reject(store, "INVALID_FIELD", "No such column 'Industy' on sobject of type Lead")
    store.outbox.enqueue(_rows(7, prefix="p"), now=T0)
    _reject(store, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "bad value for restricted picklist field: SOCIAL_MEDIA (fields: LeadSource)",
            now=T0 + timedelta(hours=1))
    assert store.outbox.dead_total() == 1_319
    big, small = store.outbox.dead_letter_groups()
    assert (big["code"], big["field"], big["count"]) == ("INVALID_FIELD", "Industy", 1_312)
    assert (small["field"], small["count"]) == ("LeadSource", 7)
    assert small["first_seen"] == small["last_seen"] == T0 + timedelta(hours=1)
    assert big["example_record"].startswith("Lead 00Q")


def test_discarded_letters_leave_the_ledger_and_same_values_are_not_sent_again(
    store: StateStore,
) -> None:
    store.outbox.enqueue(_rows(5), now=T0)
    _reject(store, "STRING_TOO_LONG", "Title: too long")
    (one, *_rest) = store.outbox.dead_letters()
    assert store.outbox.discard_dead([one["id"]]) == 1
    assert store.outbox.dead_total() == 4
    assert store.outbox.discard_dead(code="STRING_TOO_LONG") == 4
    store.outbox.enqueue(_rows(5), now=T0)  # the same values: nothing re-armed
    assert store.outbox.counts() == {"discarded": 5}
    changed = [NewOutboxRow("salesforce", "Lead", "update", {"Rating": "new"}, "r:0:update",
                            remote_id="00Q000", person_id=1)]
    store.outbox.enqueue(changed, now=T0)
    assert store.outbox.counts() == {"discarded": 4, "pending": 1}


def test_replanning_drops_the_stale_payload_and_marks_the_persons_dirty(
    store: StateStore,
) -> None:
    pids = store.persons.create(["a@x.com", "b@x.com", "c@x.com"], now=T0)
    store.persons.evaluated({pid: None for pid in pids})
    rows = [NewOutboxRow("salesforce", "Lead", "update", {"Industy": "Tech"}, f"k{pid}",
                         remote_id=f"00Q{pid}", person_id=pid) for pid in pids[:2]]
    rows.append(NewOutboxRow("salesforce", "Task", "create", {"Subject": "x"}, "orphan"))
    store.outbox.enqueue(rows, now=T0)
    _reject(store, "INVALID_FIELD", "No such column 'Industy'")
    assert store.outbox.replan_dead(code="INVALID_FIELD") == (2, 1)
    assert store.persons.to_evaluate(T0) == sorted(pids[:2])
    assert store.outbox.dead_total() == 1, "a letter no person owns stays until discarded"


@pytest.mark.parametrize(("message", "field"), [
    ("bad value (fields: LeadSource, Status)", "LeadSource, Status"),
    ('Property values were not valid: [{"name": "industy", "error": "X"}]', "industy"),
    ('Property "industy" does not exist', "industy"),
    ("UNABLE_TO_LOCK_ROW", "-"),
    (None, "-"),
])
def test_the_field_an_error_names_is_found_in_its_message(message: str | None,
                                                           field: str) -> None:
    assert error_field("X", message) == field


def test_leases_are_judged_by_the_database_clock_not_the_callers(store: StateStore) -> None:
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    far_ahead = datetime(2099, 1, 1, tzinfo=UTC)
    assert store.runs.acquire_lease("old", "a", 60, now=long_ago)
    assert store.runs.acquire_lease("old", "b", 60), "expired by the DB's clock: taken over"
    assert store.runs.acquire_lease("future", "a", 60, now=far_ahead)
    assert not store.runs.acquire_lease("future", "b", 60), "live by the DB's clock"
    (lease,) = [row for row in store.runs.leases() if row["name"] == "old"]
    assert abs(lease["expires_at"] - datetime.now(UTC) - timedelta(seconds=60)) \
        < timedelta(seconds=30)


def test_a_renewal_blocked_by_a_lock_fails_fast_instead_of_outliving_its_lease(
    store: StateStore, state_url: str,
) -> None:
    assert store.runs.acquire_lease("agent", "a", 2)
    blocker = create_engine(state_url.replace("postgresql://", "postgresql+psycopg://"))
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with blocker.begin() as connection:
            if blocker.dialect.name == "sqlite":
                connection.exec_driver_sql("UPDATE leases SET holder = holder")
            else:
                connection.execute(text("SELECT * FROM leases FOR UPDATE"))
            locked.set()
            release.wait(10)  # without a renewal timeout, the renewal would just wait

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(30)
        with pytest.raises(Exception, match=r"(?i)locked|cancel|timeout"):
            store.runs.acquire_lease("agent", "a", 2)  # 2 s lease: gives up after 0.5 s
    finally:
        release.set()
        holder.join()
        blocker.dispose()


def test_a_claim_takes_expired_claims_first_then_rows_in_the_order_they_came_due(
    store: StateStore,
) -> None:
    """One group's backlog, due earlier, never reaches another group's claim; a dead
    holder's rows come back first; the limit holds across both kinds."""
    hubspot = [NewOutboxRow("hubspot", "contacts", "update", {"score": "1"}, f"h:{i}",
                            remote_id=f"{i}") for i in range(30)]
    store.outbox.enqueue(hubspot, now=T0)
    store.outbox.enqueue(_rows(5, prefix="early"), now=T0)
    store.outbox.enqueue(_rows(5, prefix="late"), now=T0 + timedelta(seconds=5))
    killed = store.outbox.claim("killed", 2, system="salesforce", claim_seconds=10,
                                now=T0 + timedelta(seconds=1))
    assert [i.idempotency_key for i in killed] == ["early:0:update", "early:1:update"]
    # a retried row is due later than rows enqueued before its retry time
    [retried] = store.outbox.claim("a", 1, system="salesforce", now=T0 + timedelta(seconds=2))
    store.outbox.complete([OutboxResult(retried.id, "retryable", code="Busy",
                                        retry_at=T0 + timedelta(seconds=8))],
                          now=T0 + timedelta(seconds=2))
    at = T0 + timedelta(seconds=20)
    first = store.outbox.claim("b", 4, system="salesforce", object_name="Lead", now=at)
    assert {i.idempotency_key for i in first} == {"early:0:update", "early:1:update",
                                                  "early:3:update", "early:4:update"}
    rest = store.outbox.claim("b", 100, system="salesforce", now=at)
    assert [i.idempotency_key for i in rest] == [
        "early:2:update", *(f"late:{i}:update" for i in range(5))]
    assert store.outbox.claim("b", 100, system="salesforce", now=at) == []
    assert len(store.outbox.claim("b", 100, system="hubspot", now=at)) == 30
