"""The state store on SQLite and PostgreSQL: migrations, atomic pages, outbox, leases."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from state.db import MIGRATIONS_DIR, shipped_revisions
from state.models import Base
from state.store import (
    ActivityRow,
    CursorState,
    MirrorRow,
    NewOutboxRow,
    OutboxResult,
    StateStore,
    safe_url,
    schema_head,
)
from syncagent.errors import ConfigError

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _lead(rid: str, modstamp: datetime, **fields: object) -> MirrorRow:
    return MirrorRow("salesforce", "Lead", rid, {"Id": rid, **fields}, modstamp)


def test_migrations_run_from_empty_then_again_without_change(state_url: str) -> None:
    store = StateStore(state_url)
    assert store.schema_revision() is None
    assert store.upgrade() == schema_head()
    assert store.upgrade() == schema_head()
    with store.engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert drift == [], "models and migrations disagree: add a migration"
    with store.engine.connect() as connection:   # the store reads the stamp without Alembic
        assert store.schema_revision() == MigrationContext.configure(
            connection).get_current_revision()


def test_the_shipped_revisions_are_read_as_alembic_reads_them() -> None:
    """The cycle checks its DB's schema without importing Alembic (its memory): the migration
    files' own head and revisions, read from their text, must be Alembic's."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    assert shipped_revisions() == (script.get_current_head(),
                                   frozenset(r.revision for r in script.walk_revisions()))


def test_a_failing_page_leaves_mirror_and_cursor_unchanged(store: StateStore) -> None:
    store.commit_page("sf.Lead", [_lead("00Q1", T0, Email="a@x.com")], [],
                      CursorState(T0, "00Q1", frozenset({"00Q1"})))
    later = T0 + timedelta(minutes=5)
    bad_activity = ActivityRow("salesforce", "00T1", "call_connected",
                               occurred_at=datetime(2026, 11, 1))  # naive: refused mid-page
    with pytest.raises(Exception, match="naive datetime"):
        store.commit_page("sf.Lead", [_lead("00Q1", later, Email="b@x.com"),
                                      _lead("00Q2", later)], [bad_activity],
                          CursorState(later, "00Q2", frozenset({"00Q2"})))
    mirror = {r.remote_id: r for r in store.mirror.records("salesforce", "Lead")}
    assert set(mirror) == {"00Q1"}
    assert mirror["00Q1"].fields["Email"] == "a@x.com"
    cursor = store.mirror.cursor("sf.Lead")
    assert cursor is not None and cursor.modstamp == T0 and cursor.last_id == "00Q1"


def test_a_stale_reread_never_overwrites_a_newer_mirror_row(store: StateStore) -> None:
    store.mirror.upsert([_lead("00Q1", T0 + timedelta(minutes=1), Status="Working")])
    store.mirror.upsert([_lead("00Q1", T0, Status="Open")])
    (row,) = store.mirror.records("salesforce", "Lead")
    assert row.fields["Status"] == "Working"
    assert row.modstamp == T0 + timedelta(minutes=1)
    assert row.modstamp.tzinfo is not None


def test_cursor_round_trips_with_boundary_ids(store: StateStore) -> None:
    cursor = CursorState(T0, "00Q9", frozenset({"00Q8", "00Q9"}), {"phase": "backfill"})
    store.commit_page("sf.Lead", [], [], cursor)
    assert store.mirror.cursor("sf.Lead") == cursor


def _enqueue(store: StateStore, n: int, operation: str = "update") -> None:
    store.outbox.enqueue([NewOutboxRow("salesforce", "Lead", operation, {"Lead_Score__c": i},
                                       f"sf:Lead:{i}:{operation}", remote_id=f"00Q{i}")
                          for i in range(n)], now=T0)


def test_retryable_results_back_off_and_die_after_the_last_attempt(store: StateStore) -> None:
    _enqueue(store, 1)
    for attempt in range(1, 4):
        (item,) = store.outbox.claim("a", 10, now=T0 + timedelta(days=attempt))
        assert item.attempts == attempt
        store.outbox.complete([OutboxResult(item.id, "retryable", code="UNABLE_TO_LOCK_ROW",
                                            message="locked")], max_attempts=3,
                              now=T0 + timedelta(days=attempt))
        if attempt < 3:
            assert store.outbox.claim("a", 10, now=T0 + timedelta(days=attempt)) == []
    (dead,) = store.outbox.dead_letters()
    assert dead["code"] == "UNABLE_TO_LOCK_ROW" and dead["attempts"] == 3


def test_rejected_rows_keep_the_api_reason_and_are_not_rearmed_with_the_same_values(
    store: StateStore,
) -> None:
    _enqueue(store, 2)
    first, second = store.outbox.claim("a", 10, now=T0)
    store.outbox.complete([
        OutboxResult(first.id, "ok", result_id="00Q0"),
        OutboxResult(second.id, "rejected", code="STRING_TOO_LONG", message="Title: too long"),
    ], now=T0)
    assert store.outbox.counts() == {"done": 1, "dead": 1}
    assert store.outbox.dead_letters()[0]["message"] == "Title: too long"
    _enqueue(store, 2)  # the same values again: only the done row is re-armed
    assert store.outbox.counts() == {"pending": 1, "dead": 1}
    store.outbox.enqueue([NewOutboxRow("salesforce", "Lead", "update", {"Lead_Score__c": 99},
                                       "sf:Lead:1:update", remote_id="00Q1")], now=T0)
    assert store.outbox.counts() == {"pending": 2}
    assert store.outbox.replan_dead() == (0, 0)


def test_a_create_is_enqueued_once_per_key_forever(store: StateStore) -> None:
    _enqueue(store, 1, "create")
    (item,) = store.outbox.claim("a", 10, now=T0)
    store.outbox.complete([OutboxResult(item.id, "ok", result_id="00Qnew")], now=T0)
    _enqueue(store, 1, "create")
    assert store.outbox.counts() == {"done": 1}
    assert store.outbox.keys_done(["sf:Lead:0:create"]) == {"sf:Lead:0:create": "00Qnew"}


def test_a_claim_of_a_dead_holder_expires_and_the_row_is_claimed_again(
    store: StateStore,
) -> None:
    _enqueue(store, 1)
    (item,) = store.outbox.claim("crashed", 10, claim_seconds=60, now=T0)
    assert store.outbox.claim("other", 10, now=T0 + timedelta(seconds=30)) == []
    (again,) = store.outbox.claim("other", 10, now=T0 + timedelta(seconds=61))
    assert again.id == item.id and again.attempts == 2


def _claim_all(url: str, holder: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = StateStore(url)
    claimed: list[int] = []
    while batch := store.outbox.claim(holder, 7, now=T0 + timedelta(seconds=1)):
        claimed.extend(item.id for item in batch)
    out.put(claimed)


def test_two_processes_never_claim_the_same_outbox_row(store: StateStore) -> None:
    _enqueue(store, 400)
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [context.Process(target=_claim_all, args=(store.url, f"agent-{n}", results))
               for n in range(2)]
    for worker in workers:
        worker.start()
    claimed = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    first, second = (set(ids) for ids in claimed)
    assert not first & second, "a row was claimed by both agents"
    assert len(first | second) == 400
    assert sum(len(ids) for ids in claimed) == 400


def test_an_expired_lease_can_be_taken_over_but_a_live_one_cannot(store: StateStore) -> None:
    assert store.runs.acquire_lease("cycle", "a", 60, now=T0)
    assert not store.runs.acquire_lease("cycle", "b", 60, now=T0 + timedelta(seconds=59))
    assert store.runs.acquire_lease("cycle", "a", 60, now=T0 + timedelta(seconds=59)), "renewal"
    assert store.runs.acquire_lease("cycle", "b", 60, now=T0 + timedelta(seconds=120))
    assert not store.runs.acquire_lease("cycle", "a", 60, now=T0 + timedelta(seconds=121))
    store.runs.release_lease("cycle", "b")
    assert store.runs.acquire_lease("cycle", "a", 60, now=T0 + timedelta(seconds=122))


def test_persons_links_and_dirty_tracking(store: StateStore) -> None:
    first, second = store.persons.create(["a@x.com", "b@x.com"], now=T0)
    store.persons.link([("salesforce", "Lead", "00Q1", first, "email"),
                        ("hubspot", "contacts", "101", first, "cross_id")], now=T0)
    assert store.persons.links()[("hubspot", "contacts", "101")] == first
    assert store.persons.to_evaluate(T0) == [first, second]
    store.persons.evaluated({first: T0 + timedelta(days=1), second: None})
    assert store.persons.to_evaluate(T0) == []
    assert store.persons.to_evaluate(T0 + timedelta(days=2)) == [first]


def test_runs_and_status_summary(store: StateStore) -> None:
    empty = store.status_summary()
    assert empty["runs"] == [] and empty["outbox"] == {} and empty["dead_letters"] == 0
    run = store.runs.start(holder="me", now=T0)
    store.runs.finish(run, status="ok", counts={"pulled": 3}, api_calls={"salesforce": 2},
                      errors=[], now=T0 + timedelta(seconds=4))
    (last,) = store.status_summary()["runs"]
    assert last["status"] == "ok" and last["api_calls"] == {"salesforce": 2}
    assert last["finished_at"] - last["started_at"] == timedelta(seconds=4)


def test_the_url_password_is_never_shown() -> None:
    shown = safe_url("postgresql://agent:hunter2-secret@db:5432/state")
    assert "hunter2-secret" not in shown and "agent" in shown


def test_an_empty_db_asks_for_db_upgrade(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match="no schema yet"):
        StateStore(sqlite_url).status_summary()
