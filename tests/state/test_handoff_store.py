"""The handoff tables on SQLite and PostgreSQL: written with the evaluation or not at all,
insert-once by key, a fired step never fired or reopened again, the reads preview and reports
use, and migration 0004's backfill of stage history from the decisions stored before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command

from state import decisions as decided
from state.db import alembic_config
from state.handoff import (
    CANCELLED,
    FIRED,
    PENDING,
    FeedbackRow,
    HandoffRows,
    StageChange,
    TaskRecord,
    TimerRow,
)
from state.store import NewOutboxRow, StateStore

T0 = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)   # a Friday afternoon in New York
MANY = 1_000   # past one IN (...) chunk of 900 ids


def _timer(pid: int, kind: str, due: datetime, status: str = PENDING) -> TimerRow:
    return TimerRow(f"sla:{pid}:{kind}:{T0:%Y%m%dT%H%M%SZ}", pid, kind, T0, due, "005A",
                    status, due if status == FIRED else None, {"message": kind})


def _task(pid: int, key: str, at: datetime, kind: str = "remind") -> TaskRecord:
    return TaskRecord(key, pid, kind, kind, "salesforce", "005A", at, {"subject": key})


def _task_row(key: str, pid: int) -> NewOutboxRow:
    return NewOutboxRow("salesforce", "Task", "create", {"Subject": "s", "__key": key},
                        f"salesforce:task:{key}", person_id=pid)


def _decision(pid: int, stage: str, at: datetime, mql: datetime | None = None) -> dict:
    return {"person_id": pid, "grade": "A", "score": 50, "segment": None, "stage": stage,
            "owner": "005A", "track": None, "mql_date": mql, "reasons": {}, "evaluated_at": at}


def _counts(store: StateStore) -> dict[str, int]:
    pids = store.persons.all_ids()
    return {"history": sum(len(store.handoff.history(p)) for p in pids),
            "timers": sum(len(v) for v in store.handoff.timers_of(pids).values()),
            "tasks": sum(len(store.handoff.tasks_of(p)) for p in pids),
            "feedback": len(store.handoff.feedback_between()),
            "outbox": sum(store.outbox.counts().values())}


def _evaluation(pid: int, at: datetime) -> tuple[list[NewOutboxRow], HandoffRows]:
    remind = _timer(pid, "remind", at, FIRED)
    rows = HandoffRows(
        history=[StageChange(f"{pid}:Lead>MQL:{at:%Y%m%dT%H%M%S%fZ}", pid, at, "Lead", "MQL",
                             "rule", "lifecycle: mql", {"reason": "score 60 ≥ 50"})],
        timers=[remind, _timer(pid, "escalate", at + timedelta(hours=20))],
        tasks=[_task(pid, remind.key, at)],
        feedback=[FeedbackRow(f"{pid}:recycled:{at:%Y%m%dT%H%M%S%fZ}", pid, at, "recycled",
                              "Timing", "Disqualified", "Webinar", "701X", "005A")])
    return [_task_row(remind.key, pid)], rows


def test_the_same_evaluation_applied_twice_inserts_nothing_the_second_time(
    store: StateStore,
) -> None:
    (pid,) = store.persons.create([None], now=T0)
    outbox_rows, rows = _evaluation(pid, T0)
    store.commit_evaluation(outbox_rows, [_decision(pid, "MQL", T0, T0)], {pid: None}, {},
                            now=T0, handoff=rows)
    first = _counts(store)
    assert first == {"history": 1, "timers": 2, "tasks": 1, "feedback": 1, "outbox": 1}
    store.commit_evaluation(outbox_rows, [_decision(pid, "MQL", T0, T0)], {pid: None}, {},
                            now=T0, handoff=rows)
    assert _counts(store) == first


def test_a_failing_evaluation_stores_no_fired_timer_and_no_task(store: StateStore) -> None:
    (pid,) = store.persons.create([None], now=T0)
    outbox_rows, rows = _evaluation(pid, T0)
    naive_due = {pid: datetime(2026, 11, 28)}   # refused by the last write of the transaction
    with pytest.raises(Exception, match="naive datetime"):
        store.commit_evaluation(outbox_rows, [_decision(pid, "MQL", T0)], naive_due, {},
                                now=T0, handoff=rows)
    assert _counts(store) == {"history": 0, "timers": 0, "tasks": 0, "feedback": 0,
                              "outbox": 0}


def test_a_fired_step_stays_fired_and_only_pending_steps_are_cancelled_or_moved(
    store: StateStore,
) -> None:
    (pid,) = store.persons.create([None], now=T0)
    remind = _timer(pid, "remind", T0 + timedelta(hours=4))
    escalate = _timer(pid, "escalate", T0 + timedelta(hours=24))
    store.commit_evaluation([], [], {}, {}, now=T0,
                            handoff=HandoffRows(timers=[remind, escalate]))
    fired_at = T0 + timedelta(hours=5)
    store.commit_evaluation([], [], {}, {}, now=fired_at, handoff=HandoffRows(
        timers=[TimerRow(**{**remind.__dict__, "status": FIRED, "fired_at": fired_at})]))
    # A stale re-evaluation (a crashed cycle's) says pending with another due time and a
    # cancel of both: the fired step keeps its state, the pending one moves, then cancels.
    moved = TimerRow(**{**escalate.__dict__, "due_at": T0 + timedelta(hours=30),
                        "recipient": "005M"})
    store.commit_evaluation([], [], {}, {}, now=fired_at, handoff=HandoffRows(
        timers=[remind, moved]))
    stored = {t.kind: t for t in store.handoff.timers_of([pid])[pid]}
    assert (stored["remind"].status, stored["remind"].fired_at) == (FIRED, fired_at)
    assert (stored["escalate"].due_at, stored["escalate"].recipient) == \
        (T0 + timedelta(hours=30), "005M")
    store.commit_evaluation([], [], {}, {}, now=fired_at, handoff=HandoffRows(
        cancelled=[remind.key, escalate.key]))
    stored = {t.kind: t for t in store.handoff.timers_of([pid])[pid]}
    assert stored["remind"].status == FIRED and stored["escalate"].status == CANCELLED
    assert store.handoff.pending_timers([pid]) == {}


def test_pending_timers_and_due_persons_across_in_list_chunks(store: StateStore) -> None:
    pids = store.persons.create([None] * MANY, now=T0)
    timers = [_timer(pid, "remind", T0 + timedelta(minutes=pid % 7)) for pid in pids]
    timers += [_timer(pids[0], "escalate", T0 - timedelta(hours=1), FIRED)]
    store.commit_evaluation([], [], {}, {}, now=T0, handoff=HandoffRows(timers=timers))
    pending = store.handoff.pending_timers(pids)
    assert len(pending) == MANY and all(len(v) == 1 for v in pending.values())
    assert len(store.handoff.timers_of([pids[0]])[pids[0]]) == 2
    assert store.handoff.due_persons(T0) == sorted(p for p in pids if p % 7 == 0)
    assert store.handoff.timers_of([]) == {}


def test_history_per_person_and_period_tasks_newest_first_feedback_per_period(
    store: StateStore,
) -> None:
    first, second = store.persons.create([None, None], now=T0)
    days = [T0 + timedelta(days=n) for n in range(4)]
    history = [StageChange(f"{pid}:{n}", pid, day, None, "MQL", "rule", None)
               for n, day in enumerate(days) for pid in (first, second)]
    tasks = [_task(first, f"k{n}", day) for n, day in enumerate(days)]
    feedback = [FeedbackRow(f"f{n}", second, day, "disqualified", "No budget", None, None,
                            None, None) for n, day in enumerate(days)]
    keys = [f"k{n}" for n in range(MANY)]
    store.commit_evaluation([], [], {}, {}, now=T0, handoff=HandoffRows(
        history=history, tasks=tasks, feedback=feedback))
    assert [h.at for h in store.handoff.history(first)] == days
    assert [h.key for h in store.handoff.history_between(days[1], days[3])] == \
        [f"{first}:1", f"{second}:1", f"{first}:2", f"{second}:2"]
    assert [t.key for t in store.handoff.tasks_of(first)] == ["k3", "k2", "k1", "k0"]
    assert store.handoff.tasks_of(second) == []
    assert [f.key for f in store.handoff.feedback_between(since=days[2])] == ["f2", "f3"]
    assert [f.key for f in store.handoff.feedback_between(until=days[1])] == ["f0"]
    assert store.handoff.existing_task_keys(keys) == {"k0", "k1", "k2", "k3"}


def test_migration_0004_backfills_stage_history_from_stored_decisions(state_url: str) -> None:
    store = StateStore(state_url)
    try:
        with store.engine.connect() as connection:
            config = alembic_config(store.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "0003")
            connection.commit()
        assert store.schema_revision() == "0003"
        mql_at, later = T0 - timedelta(days=3), T0
        rows = [_decision(1, "Lead", later), _decision(2, "MQL", later, mql_at),
                _decision(3, "SQL", later, mql_at), _decision(4, "Recycled", later, mql_at),
                _decision(5, "SAL", mql_at - timedelta(days=1), mql_at)]
        rows.append({**_decision(6, "Lead", later), "stage": None})
        with store.sessions.write() as session:
            decided.save(session, rows)
        store.upgrade()
        got = {pid: [(h.from_stage, h.to_stage, h.at, h.cause) for h in
                     store.handoff.history(pid)] for pid in range(1, 7)}
    finally:
        store.dispose()
    assert got == {
        1: [(None, "Lead", later, "backfill")],
        2: [(None, "MQL", mql_at, "backfill")],
        3: [(None, "MQL", mql_at, "backfill"), ("MQL", "SQL", later, "backfill")],
        # a recycled lead's MQL date is the episode's: only its latest stage is known
        4: [(None, "Recycled", later, "backfill")],
        # evaluated before its MQL date (clock skew): the step is never before the MQL
        5: [(None, "MQL", mql_at, "backfill"), ("MQL", "SAL", mql_at, "backfill")],
        6: [],
    }
