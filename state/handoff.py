"""The handoff loop's tables: stage history, SLA timers, the tasks the agent queued, and reps'
feedback.

Rows are written only by `StateStore.commit_evaluation` (`save`), in the transaction that
stores the decisions and outbox rows they come from, so a timer is marked fired exactly when
its task is queued. Every row has a key made from what it records (person, kind, moment):
re-applying the same evaluation after a crash inserts nothing new. `HandoffStore` holds the
reads that preview, reports and the pipeline need.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, select, update
from sqlalchemy.orm import Session

from state import models as m
from state.common import (
    IN_LIST,
    Sessions,
    as_tuples,
    chunks,
    field_names,
    insert_ignore,
    table_of,
    upsert,
)
from state.db import column_reader, driver_rows, listed, once_each, one_of

PENDING, FIRED, CANCELLED = "pending", "fired", "cancelled"


@dataclass(frozen=True)
class StageChange:
    """One row of stage history."""

    key: str
    person_id: int
    at: datetime
    from_stage: str | None
    to_stage: str
    cause: str                 # rule | rep | recycle | sla | backfill
    actor: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimerRow:
    """One step of an SLA timer as stored (``status`` pending, fired or cancelled)."""

    key: str
    person_id: int
    kind: str
    started_at: datetime
    due_at: datetime
    recipient: str | None
    status: str = PENDING
    fired_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskRecord:
    """A task the agent queued (or meant to: ``system`` None says why not in ``detail``)."""

    key: str
    person_id: int
    kind: str                  # alert | remind | escalate | reassign | qualify | qualify_late
    name: str
    system: str | None
    recipient: str | None
    created_at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedbackRow:
    """A rep's verdict on a lead: recycled or disqualified, and why."""

    key: str
    person_id: int
    at: datetime
    outcome: str               # recycled | disqualified
    reason: str | None
    lead_status: str | None
    lead_source: str | None
    campaign: str | None
    owner: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class HandoffRows:
    """What one evaluated chunk adds to the four tables. ``timers`` are the emitted steps
    (pending, or fired now); ``cancelled`` the keys of pending steps no longer emitted."""

    history: list[StageChange] = field(default_factory=list)
    timers: list[TimerRow] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    tasks: list[TaskRecord] = field(default_factory=list)
    feedback: list[FeedbackRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.history or self.timers or self.cancelled or self.tasks
                    or self.feedback)


def save(session: Session, rows: HandoffRows) -> None:
    """Write a chunk's handoff rows inside the caller's transaction (see the module). Each
    row's fields are its columns: bound as its tuple (`common.as_tuples`; an evaluation
    worker sends that), neither `asdict`, whose deep copy of every detail costs more than
    the insert, nor a dict per row."""
    _insert(session, m.StageHistory, StageChange, rows.history)
    _save_timers(session, rows.timers)
    _cancel(session, rows.cancelled)
    _insert(session, m.HandoffTask, TaskRecord, rows.tasks)
    _insert(session, m.Feedback, FeedbackRow, rows.feedback)


def _insert(session: Session, model: type[m.Base], kind: type, rows: Sequence[Any]) -> None:
    insert_ignore(session, table_of(model), as_tuples(rows, kind), ["key"],
                  fields=field_names(kind))


def _save_timers(session: Session, timers: Sequence[TimerRow]) -> None:
    """A pending step takes the latest due time and recipient (the business hours or the
    owner's absence may have changed them); a fired step is never touched again, so a
    re-applied evaluation cannot fire it twice or bring it back to pending."""
    table = table_of(m.SlaTimerRow)
    upsert(session, table, as_tuples(timers, TimerRow), ["key"],
           ["due_at", "recipient", "status", "fired_at", "detail"],
           where=lambda _excluded: table.c.status != FIRED, fields=field_names(TimerRow))


def _cancel(session: Session, keys: Sequence[str]) -> None:
    """Only a pending step is cancelled: a fired one stays fired."""
    table = table_of(m.SlaTimerRow)
    for chunk in chunks(list(keys), IN_LIST):
        session.execute(update(table).where(table.c.key.in_(chunk), table.c.status == PENDING)
                        .values(status=CANCELLED))


class HandoffStore:
    """Reads of stage history, timers, tasks and feedback."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def timers_of(self, person_ids: Iterable[int], *,
                  statuses: Sequence[str] | None = None) -> dict[int, list[TimerRow]]:
        """person id -> its timer steps, by due time (only these statuses, when given).

        One indexed read (the ids are one parameter, db.one_of) of the driver's own rows
        (db.driver_rows), the times and details converted as SQLAlchemy would, each distinct
        value once: a chunk's steps share a few start and due times and a few hundred
        details (an ORM object a row cost ~14 us a person, every evaluation reads them)."""
        ids = sorted(set(person_ids))
        if not ids:
            return {}
        t, dialect = table_of(m.SlaTimerRow), self._sessions.dialect
        query = select(t.c.key, t.c.person_id, t.c.kind, t.c.started_at, t.c.due_at,
                       t.c.recipient, t.c.status, t.c.fired_at, cast(t.c.detail, Text)).where(
            one_of(dialect, t.c.person_id))
        if statuses is not None:
            query = query.where(t.c.status.in_(list(statuses)))
        out: dict[int, list[TimerRow]] = {}
        with self._sessions.read() as session:
            moment = once_each(column_reader(session.get_bind().dialect, t.c.due_at))
            detail_of = once_each(_json_text)   # as text on both: Postgres's decoded once, too
            for key, pid, kind, started, due, recipient, status, fired, detail in driver_rows(
                    session, query.order_by(t.c.due_at, t.c.key), {"ids": listed(dialect, ids)}):
                out.setdefault(pid, []).append(TimerRow(
                    key, pid, kind, moment(started), moment(due), recipient, status,
                    moment(fired), dict(detail_of(detail) or {})))
        return out

    def pending_timers(self, person_ids: Iterable[int]) -> dict[int, list[TimerRow]]:
        return self.timers_of(person_ids, statuses=[PENDING])

    def due_persons(self, now: datetime) -> list[int]:
        """Persons with a pending step due by ``now`` (a safety net for their evaluation)."""
        t = m.SlaTimerRow
        with self._sessions.read() as session:
            return sorted(set(session.scalars(
                select(t.person_id).where(t.status == PENDING, t.due_at <= now))))

    def history(self, person_id: int) -> list[StageChange]:
        """A person's stage changes, oldest first."""
        t = m.StageHistory
        with self._sessions.read() as session:
            rows = session.scalars(select(t).where(t.person_id == person_id)
                                   .order_by(t.at, t.id))
            return [_stage(r) for r in rows]

    def history_between(self, since: datetime | None = None,
                        until: datetime | None = None) -> list[StageChange]:
        """Every stage change with ``since <= at < until`` (either bound optional)."""
        t = m.StageHistory
        with self._sessions.read() as session:
            query = select(t).where(*_period(t.at, since, until)).order_by(t.at, t.id)
            return [_stage(r) for r in session.scalars(query)]

    def tasks_of(self, person_id: int, limit: int = 100) -> list[TaskRecord]:
        """A person's tasks, newest first."""
        t = m.HandoffTask
        with self._sessions.read() as session:
            rows = session.scalars(select(t).where(t.person_id == person_id)
                                   .order_by(t.created_at.desc(), t.key.desc()).limit(limit))
            return [_task(r) for r in rows]

    def existing_task_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these task keys are stored already (one indexed read, the keys one
        parameter: db.one_of)."""
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        t, dialect = table_of(m.HandoffTask), self._sessions.dialect
        query = select(t.c.key).where(one_of(dialect, t.c.key))
        with self._sessions.read() as session:
            return {key for (key,) in driver_rows(session, query,
                                                  {"ids": listed(dialect, wanted)})}

    def feedback_between(self, since: datetime | None = None,
                         until: datetime | None = None) -> list[FeedbackRow]:
        """Reps' verdicts with ``since <= at < until``, oldest first."""
        t = m.Feedback
        with self._sessions.read() as session:
            query = select(t).where(*_period(t.at, since, until)).order_by(t.at, t.id)
            return [_feedback(r) for r in session.scalars(query)]


def _json_text(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _period(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    bounds = []
    if since is not None:
        bounds.append(column >= since)
    if until is not None:
        bounds.append(column < until)
    return bounds


def _stage(r: m.StageHistory) -> StageChange:
    return StageChange(r.key, r.person_id, r.at, r.from_stage, r.to_stage, r.cause, r.actor,
                       dict(r.detail or {}))


def _task(r: m.HandoffTask) -> TaskRecord:
    return TaskRecord(r.key, r.person_id, r.kind, r.name, r.system, r.recipient, r.created_at,
                      dict(r.detail or {}))


def _feedback(r: m.Feedback) -> FeedbackRow:
    return FeedbackRow(r.key, r.person_id, r.at, r.outcome, r.reason, r.lead_status,
                       r.lead_source, r.campaign, r.owner, dict(r.detail or {}))
