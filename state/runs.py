"""Runs, leases and key-value state: what the agent records about its own work.

Run history is one row per cycle with its status, figures, API calls and errors.

Statuses: `running` (started, not finished: a crash or a kill leaves it so), `ok` (nothing
rejected, no step failed), `partial` (the cycle finished but some records were rejected, left
to retry, or a system stopped), `failed` (a step raised, or an error no retry can fix), and
`stopped` (SIGTERM or a lost lease ended it early).

Leases are judged by the database's clock (see `state/leases.py`). Key-value state holds the
few named values a cycle carries to the next; their names are the `Key` constants below.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from state import leases
from state import models as m
from state.common import Sessions, table_of, upsert, utcnow

COMPLETED = ("ok", "partial")


class Key:
    """The names of the key-value state: every name the agent reads or writes is here."""

    API_USAGE: Final = "api_usage"  # each system's API calls today, against its daily budget
    LAST_CYCLE: Final = "last_cycle"  # the last cycle's report, as `status` shows it
    ROUTING_STATE: Final = "routing_state"  # round-robin positions, so routing resumes there
    HISTORY_PRUNED: Final = "history_pruned"  # when old run history was last pruned (retention)


def start(session: Session, kind: str, holder: str | None, now: datetime) -> int:
    run = m.Run(kind=kind, holder=holder, started_at=now, status="running", counts={},
                api_calls={}, errors=[])
    session.add(run)
    session.flush()
    return int(run.id)


def finish(session: Session, run_id: int, *, status: str, counts: dict[str, Any],
           api_calls: dict[str, Any], errors: list[Any], now: datetime) -> None:
    session.execute(update(m.Run).where(m.Run.id == run_id).values(
        finished_at=now, status=status, counts=counts, api_calls=api_calls, errors=errors))


def recent(session: Session, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(m.Run).order_by(m.Run.id.desc()).limit(limit))
    return [{c.name: getattr(r, c.name) for c in table_of(m.Run).columns} for r in rows]


def last_completed_at(session: Session) -> datetime | None:
    """When the last cycle that ran to its end (ok or partial) finished."""
    return session.scalar(select(func.max(m.Run.finished_at))
                          .where(m.Run.status.in_(COMPLETED)))


def set_values(session: Session, values: Mapping[str, Any], now: datetime) -> None:
    rows = [{"name": name, "value": value, "updated_at": now} for name, value in values.items()]
    upsert(session, table_of(m.KeyValue), rows, ["name"], ["value", "updated_at"])


class RunStore:
    """Run history, leases and key-value state, one session per call."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    # ----------------------------------------------------------------- runs
    def start(self, kind: str = "cycle", holder: str | None = None,
              now: datetime | None = None) -> int:
        with self._sessions.write() as session:
            return start(session, kind, holder, now or utcnow())

    def finish(self, run_id: int, *, status: str, counts: dict[str, Any],
               api_calls: dict[str, Any], errors: list[Any],
               now: datetime | None = None) -> None:
        with self._sessions.write() as session:
            finish(session, run_id, status=status, counts=counts, api_calls=api_calls,
                   errors=errors, now=now or utcnow())

    def recent(self, limit: int = 10) -> list[dict[str, Any]]:
        with self._sessions.read() as session:
            return recent(session, limit)

    def last_completed_at(self) -> datetime | None:
        with self._sessions.read() as session:
            return last_completed_at(session)

    # ----------------------------------------------------------------- leases
    def acquire_lease(self, name: str, holder: str, seconds: float,
                      now: datetime | None = None) -> bool:
        """Take or renew the named lease, by the database's clock; True when this holder has
        it for `seconds` more. Another holder's lease is taken only once it has expired."""
        with self._sessions.write() as session:
            return leases.acquire(session, self._sessions.dialect, name, holder, seconds, now)

    def release_lease(self, name: str, holder: str) -> None:
        with self._sessions.write() as session:
            leases.release(session, name, holder)

    def leases(self) -> list[dict[str, Any]]:
        with self._sessions.read() as session:
            return leases.all_leases(session)

    # ----------------------------------------------------------------- key-value state
    def get_value(self, name: str, default: Any = None) -> Any:
        with self._sessions.read() as session:
            row = session.get(m.KeyValue, name)
            return default if row is None else row.value

    def set_value(self, name: str, value: Any, now: datetime | None = None) -> None:
        with self._sessions.write() as session:
            set_values(session, {name: value}, now or utcnow())
