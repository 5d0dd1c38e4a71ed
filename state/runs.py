"""Run history: one row per cycle with its status, figures, API calls and errors.

Statuses: `running` (started, not finished: a crash or a kill leaves it so), `ok` (nothing
rejected, no step failed), `partial` (the cycle finished but some records were rejected, left
to retry, or a system stopped), `failed` (a step raised, or an error no retry can fix), and
`stopped` (SIGTERM or a lost lease ended it early).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from state import models as m
from state.common import table_of

COMPLETED = ("ok", "partial")


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
