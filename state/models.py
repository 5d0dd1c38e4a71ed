"""Tables of the state DB (SQLAlchemy 2 declarative models).

Only `state/store.py` queries these; everything else goes through the store's methods.
Datetimes are stored as UTC and always come back timezone-aware (SQLite keeps no zone, so
`UTCDateTime` attaches UTC on the way out). JSON columns are JSONB on Postgres.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so Alembic migrations can refer to them on both databases.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY; Postgres wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime that must be aware going in and is aware (UTC) coming out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the state DB; use UTC-aware")
        if value.tzinfo is not UTC:   # nearly every value is UTC already: no conversion
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, the stored text in one step, as SQLAlchemy's DATETIME writes it
        (``YYYY-MM-DD HH:MM:SS.ffffff``, formatted from a tuple, not its dict): a rescore
        binds several datetimes per person, and the generic path (this check, then the
        dialect's formatting) costs about twice as much per value."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """On SQLite, parse the stored ISO text in one step (reports read hundreds of
        thousands of these; the generic path costs several times more per value)."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _sqlite_moment


_SQLITE_FORMAT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"   # SQLAlchemy's DATETIME storage format


def _sqlite_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given to the state DB; use UTC-aware")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return _SQLITE_FORMAT % (value.year, value.month, value.day, value.hour, value.minute,
                             value.second, value.microsecond)


def _sqlite_moment(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:   # stored as UTC without a zone: name it in the text (cheaper than replace())
            value = datetime.fromisoformat(value + "+00:00")
        except ValueError:   # the text names a zone of its own
            value = datetime.fromisoformat(value)
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SyncCursor(Base):
    """Where each stream's incremental read stands: (modstamp, id) plus the boundary ids seen."""

    __tablename__ = "sync_cursors"
    stream: Mapped[str] = mapped_column(String(120), primary_key=True)
    modstamp: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_id: Mapped[str | None] = mapped_column(String(64))
    boundary_ids: Mapped[list[str]] = mapped_column(JsonType, default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MirrorRecord(Base):
    """What a remote record held when the agent last saw it (or last wrote it)."""

    __tablename__ = "mirror"
    system: Mapped[str] = mapped_column(String(16), primary_key=True)
    object: Mapped[str] = mapped_column(String(64), primary_key=True)
    remote_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JsonType)
    modstamp: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Values the agent itself wrote, with when: tells a rep's later edit from our own echo.
    agent_written: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    email_key: Mapped[str | None] = mapped_column(String(320), index=True)
    # When the system created the record (its profile's created field, parsed on the way in):
    # reports find the leads of a period by it without reading every record's fields.
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Both cover what the reports' "created in a period" query reads, so it never reads a
    # record's row (its fields): records created in the period; a person's earlier records.
    __table_args__ = (
        Index("ix_mirror_created", "created_at", "deleted", "system", "object", "remote_id"),
        Index("ix_mirror_alive_created", "system", "object", "remote_id", "deleted",
              "created_at"),
    )


class MatchQueue(Base):
    """Records pulled (or pointed at by a pulled activity) but not yet matched to a person:
    written with the page, removed once matched, so a crash in between loses nothing."""

    __tablename__ = "match_queue"
    system: Mapped[str] = mapped_column(String(16), primary_key=True)
    object: Mapped[str] = mapped_column(String(64), primary_key=True)
    remote_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class Person(Base):
    """One human, however many records the two systems hold for them."""

    __tablename__ = "persons"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email_key: Mapped[str | None] = mapped_column(String(320), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set when data changed; cleared by evaluation. due_at: decay/SLA re-evaluation time.
    dirty: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class PersonLink(Base):
    """A remote record belongs to a person; `linked_by` says how the match was made."""

    __tablename__ = "person_links"
    system: Mapped[str] = mapped_column(String(16), primary_key=True)
    object: Mapped[str] = mapped_column(String(64), primary_key=True)
    remote_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(BigId, index=True)
    linked_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Activity(Base):
    """A normalised behaviour event (page view, form fill, call...) from either system."""

    __tablename__ = "activities"
    system: Mapped[str] = mapped_column(String(16), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ref_object: Mapped[str | None] = mapped_column(String(64))
    ref_id: Mapped[str | None] = mapped_column(String(64))
    person_id: Mapped[int | None] = mapped_column(BigId)
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)

    __table_args__ = (
        Index("ix_activities_ref", "ref_object", "ref_id"),
        # only rows with a stored person (imports, older rows): the pipeline leaves it empty,
        # and an entry per pulled activity under NULL cost every insert for no read (0007)
        Index("ix_activities_person", "person_id", "occurred_at",
              sqlite_where=text("person_id IS NOT NULL"),
              postgresql_where=text("person_id IS NOT NULL")),
        Index("ix_activities_kind", "kind", "occurred_at"),
    )


class Decision(Base):
    """The latest evaluation of a person, with the reasons shown to reps and marketers."""

    __tablename__ = "decisions"
    person_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    grade: Mapped[str | None] = mapped_column(String(4))
    score: Mapped[float | None] = mapped_column(Float)
    segment: Mapped[str | None] = mapped_column(String(40))
    stage: Mapped[str | None] = mapped_column(String(40))
    owner: Mapped[str | None] = mapped_column(String(64))
    track: Mapped[str | None] = mapped_column(String(80))
    mql_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reasons: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxRow(Base):
    """A pending write; kept, with the API's reason, as a dead letter when it fails for good."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(24))
    remote_id: Mapped[str | None] = mapped_column(String(64))
    person_id: Mapped[int | None] = mapped_column(BigId)
    fields: Mapped[dict[str, Any]] = mapped_column(JsonType)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_code: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str | None] = mapped_column(Text)
    result_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The remote modification time of the newest change the write carries (see plan.py):
    # once the write is done, done time minus this is its change-to-visible latency.
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # a claim and the due counts of one group read only that group's rows (0006), a
        # claim in the order it takes them (0008: id last; the index by status and due time
        # alone, which no query used, is gone)
        Index("ix_outbox_group", "status", "system", "object", "operation", "next_attempt_at",
              "id"),
    )


class ChangeLatency(Base):
    """One completed write: from the remote change it carries to the agent's write being
    done on ``system``. Sync health reads percentiles per system and (UTC) day."""

    __tablename__ = "change_latency"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seconds: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_change_latency_day", "day", "system", "seconds"),)


class Run(Base):
    """One cycle's history: when, what it did, what it cost, what went wrong."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(24), default="cycle")
    holder: Mapped[str | None] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    api_calls: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    errors: Mapped[list[Any]] = mapped_column(JsonType, default=list)


class Lease(Base):
    """Who may work a named piece (a stream, the outbox, the cycle) until when."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyKey(Base):
    """A side effect already done (a created Task, Lead, contact): never done twice."""

    __tablename__ = "idempotency_keys"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    system: Mapped[str] = mapped_column(String(16))
    remote_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DataQualityItem(Base):
    """Something a person should look at: an ambiguous match, a record the agent skipped."""

    __tablename__ = "data_quality"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(320), unique=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)


class KeyValue(Base):
    """Small named state the pipeline persists (routing rotation, API usage, last figures)."""

    __tablename__ = "agent_state"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SchemaFacts(Base):
    """What the doctor last read of each system's schema (fields, properties, lists, scopes),
    so `sync`, `run` and `check --live` can check requirements without reading it again."""

    __tablename__ = "schema_facts"
    system: Mapped[str] = mapped_column(String(16), primary_key=True)
    facts: Mapped[Any] = mapped_column(JsonType)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- the handoff loop: stage history, SLA timers, the tasks the agent gave, reps' feedback --

class StageHistory(Base):
    """Every change of a person's lifecycle stage: when, from, to, why and who caused it.
    Reports and SLA timers read it; `key` makes a re-applied evaluation insert nothing."""

    __tablename__ = "stage_history"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    person_id: Mapped[int] = mapped_column(BigId)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(40))
    to_stage: Mapped[str] = mapped_column(String(40))
    cause: Mapped[str] = mapped_column(String(24))   # rule | rep | recycle | sla | backfill
    actor: Mapped[str | None] = mapped_column(String(120))  # rule name, user id, "agent"
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)

    __table_args__ = (Index("ix_stage_history_person", "person_id", "at"),)


class SlaTimerRow(Base):
    """One step of a hand-off timer (remind, escalate, reassign, qualify, qualify_late).
    Fired in the same transaction as the task it queues, so it never fires twice."""

    __tablename__ = "sla_timers"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    person_id: Mapped[int] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recipient: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|fired|cancelled
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)

    __table_args__ = (Index("ix_sla_timers_due", "status", "due_at"),)


class HandoffTask(Base):
    """A task the agent queued for a person (an alert, an SLA step): `preview` shows them,
    the alert cooldown and the reports read them. `key` is the task's idempotency key."""

    __tablename__ = "handoff_tasks"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    person_id: Mapped[int] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(String(24))    # alert | remind | escalate | reassign | ...
    name: Mapped[str] = mapped_column(String(80))    # the alert rule, or the timer kind
    system: Mapped[str | None] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


class Feedback(Base):
    """A rep's verdict on a lead sent to sales (recycled or disqualified, with the reason),
    kept with the lead's source and campaign for marketing's reports."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    person_id: Mapped[int] = mapped_column(BigId, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    outcome: Mapped[str] = mapped_column(String(16))   # recycled | disqualified
    reason: Mapped[str | None] = mapped_column(String(120))
    lead_status: Mapped[str | None] = mapped_column(String(80))
    lead_source: Mapped[str | None] = mapped_column(String(120))
    campaign: Mapped[str | None] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
