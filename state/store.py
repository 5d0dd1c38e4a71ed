"""The state store: the façade over the state DB and its per-concern stores.

`StateStore` owns the engine and the sessions, the schema's lifecycle (upgrade, revision,
the refusal of a missing or newer schema) and the two commits that must span concerns:
- `commit_page`: a pulled page's mirror rows and activities, the stream's new cursor and the
  match-queue rows for what changed, in ONE transaction;
- `commit_evaluation`: an evaluation's decisions, the outbox rows planned from them, the
  persons' next due times, named state and handoff rows, in ONE transaction.
Everything else goes through one store per concern, each getting its sessions from here:
`mirror` (cursors, mirror records, activities), `persons` (persons, links, the match queue),
`decisions`, `outbox` (with its dead letters), `runs` (runs, leases, key-value state),
`flags` (data-quality items), `schema_facts`, `handoff` (stage history, SLA timers, the
tasks the agent queued, reps' feedback) and `reports` (the reports' read-only queries).
It runs unchanged on SQLite (the embedded default) and PostgreSQL (production, several
agents sharing one DB).

Rules every store keeps: writes go in bulk (one executemany per chunk of rows, never a round
trip per row); outbox claims use `FOR UPDATE SKIP LOCKED` on Postgres; leases are judged by
the database's clock; the DB URL's password never reaches a log line or an error.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from state import dberrors, mirror, outbox, persons, recording, runs
from state import decisions as decided
from state import models as m
from state.common import OneConnection, Sessions, compress_fast, utcnow
from state.db import (
    alembic_config,
    current_revision,
    make_engine,
    normalise_url,
    safe_url,
    schema_head,
)
from state.decisions import DecisionStore
from state.flags import FlagStore
from state.handoff import HandoffRows, HandoffStore
from state.handoff import save as save_handoff
from state.mirror import ActivityRow, CursorState, MirrorRow, MirrorStore
from state.outbox import NewOutboxRow, OutboxItem, OutboxResult, OutboxStore
from state.persons import PersonStore, Ref
from state.reports import ReportStore
from state.retention import RetentionStore
from state.runs import Key, RunStore
from state.schema_facts import SchemaFactsStore
from syncagent.errors import ConfigError


class StateStore:
    """The state DB. Thread-safe: every call of every store opens its own session."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self.sessions = Sessions(sessionmaker(self.engine, expire_on_commit=False),
                                 self.dialect)
        self._bind_pull_stores()
        self.decisions = DecisionStore(self.sessions)
        self.outbox = OutboxStore(self.sessions)
        self.runs = RunStore(self.sessions)
        self.schema_facts = SchemaFactsStore(self.sessions)
        self.handoff = HandoffStore(self.sessions)
        self.reports = ReportStore(self.sessions)
        self.retention = RetentionStore(self.sessions)

    def _bind_pull_stores(self) -> None:
        """The stores a pull uses (``commit_page`` and the echo and poison look-ups around
        it), on this store's sessions."""
        self.mirror = MirrorStore(self.sessions)
        self.persons = PersonStore(self.sessions)
        self.flags = FlagStore(self.sessions)

    @contextmanager
    def on_one_connection(self) -> Iterator[StateStore]:
        """This store with its pull stores (``mirror``, ``persons``, ``flags`` and
        ``commit_page``) on one connection of their own for the block, shared by the
        threads that use it, one call at a time (common.OneConnection: SQLite keeps that
        connection's page cache between the pull's commits); its other stores are this
        store's own."""
        with self.engine.connect() as connection:
            view = copy.copy(self)
            view.sessions = OneConnection(connection, self.dialect)
            view._bind_pull_stores()
            yield view

    # ----------------------------------------------------------------- lifecycle
    def upgrade(self) -> str:
        """Create or migrate the schema to the newest revision; returns that revision."""
        from alembic import command

        dberrors.refuse_newer(self.schema_revision(), label=safe_url(self.url))
        with self._connected("migrate") as connection:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        return self.schema_revision() or "none"

    def schema_revision(self) -> str | None:
        """The Alembic revision of the DB, or None when it has no schema yet."""
        with self._connected("read the schema version") as connection:
            return current_revision(connection)

    def require_schema(self) -> None:
        revision = self.schema_revision()
        if revision is None:
            raise ConfigError(
                f"the state DB {safe_url(self.url)} has no schema yet",
                hint="Run `syncagent db upgrade` (with the same --state) first.",
            )
        dberrors.check_revision(revision, label=safe_url(self.url))

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connected(self, doing: str) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                yield connection
        except OperationalError as exc:
            raise ConfigError(
                f"cannot {doing}: the state DB {safe_url(self.url)} is unreachable "
                f"({type(exc.orig).__name__})",
                hint="Check --state / state_url, and that the database server is running.",
            ) from None

    # ----------------------------------------------------------------- the atomic commits
    def commit_page(self, stream: str, records: Sequence[MirrorRow],
                    activities: Sequence[ActivityRow], cursor: CursorState,
                    now: datetime | None = None, unchanged: Collection[Ref] = ()) -> None:
        """Store one page of a stream, queue what it changed for matching and advance the
        stream's cursor, all or nothing. `unchanged`: refs the page holds that bring nothing
        new (echoes of the agent's own writes); they are not queued, but one an earlier read
        queued stays queued."""
        now = now or utcnow()
        refs = {(r.system, r.object, r.remote_id) for r in records}
        refs |= {(a.system, a.ref_object, a.ref_id) for a in activities
                 if a.ref_object and a.ref_id}
        refs.difference_update(unchanged)
        with self.sessions.write() as session:
            mirror.upsert_records(session, records, now)
            mirror.upsert_activities(session, activities)
            persons.queue_for_match(session, refs)
            mirror.save_cursor(session, stream, cursor, now)

    def commit_evaluation(self, rows: Sequence[NewOutboxRow],
                          decisions: Sequence[dict[str, Any]],
                          due: dict[int, datetime | None], values: Mapping[str, Any],
                          now: datetime | None = None,
                          handoff: HandoffRows | None = None) -> None:
        """Planned writes, decisions, the persons' next due times, named state and the
        handoff rows (stage history, timers fired with the task rows they queue, tasks,
        feedback), together: a crash can never mark a person evaluated whose writes were not
        queued, nor a timer fired whose task was not."""
        now = now or utcnow()
        with self.sessions.write() as session:
            compress_fast(session)   # Postgres: the decisions' reasons compressed by lz4
            held = outbox.enqueue(session, rows, now)
            decided.save(session, decisions)
            if handoff:
                save_handoff(session, handoff)
            persons.set_evaluated(session, due)
            # after set_evaluated: an update whose row was in flight was not queued
            persons.set_dirty(session, held)
            runs.set_values(session, values, now)
        if rows:   # committed: a push waiting for rows alongside evaluation takes them now
            self.outbox.doorbell.ring()

    def commit_push_results(self, batches: Sequence[recording.RecordedBatch],
                            now: datetime | None = None) -> None:
        """Sent batches' results: their outbox rows settled, the values written in the
        mirror and created records linked, all or nothing (state/recording.py)."""
        with self.sessions.write() as session:
            recording.record(session, batches, now or utcnow())

    # ----------------------------------------------------------------- status
    def status_summary(self, last_runs: int = 5) -> dict[str, Any]:
        """Everything `syncagent status` shows, as plain data."""
        self.require_schema()
        with self.sessions.read() as session:
            claims = outbox.claims(session, utcnow())
            count = session.scalar(select(func.count()).select_from(m.Person)) or 0
        return {
            "state": safe_url(self.url),
            "schema_revision": self.schema_revision(),
            "runs": self.runs.recent(last_runs),
            "cursors": {name: {"modstamp": c.modstamp, "last_id": c.last_id}
                        for name, c in self.mirror.cursors().items()},
            "outbox": self.outbox.counts(),
            "in_flight": claims["in_flight"],
            "claims_expired": claims["claims_expired"],
            "dead_letters": self.outbox.dead_total(),
            "last_completed_at": self.runs.last_completed_at(),
            "persons": int(count),
            "leases": self.runs.leases(),
            "api_usage": self.runs.get_value(Key.API_USAGE, {}),
            "last_cycle": self.runs.get_value(Key.LAST_CYCLE, {}),
        }


__all__ = [
    "ActivityRow",
    "CursorState",
    "MirrorRow",
    "NewOutboxRow",
    "OutboxItem",
    "OutboxResult",
    "StateStore",
    "safe_url",
    "schema_head",
]
