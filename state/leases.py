"""Leases judged by the database's clock, so agents on hosts whose clocks disagree still agree
on who leads: `now()` on Postgres, SQLite's own `'now'` (the host's, but one clock for all its
users). A renewal runs under a statement timeout: a renewal stuck behind a lock must fail
fast, so the leader can stop working before its lease runs out, rather than hang past it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, literal, or_, select, text
from sqlalchemy.orm import Session

from state import models as m
from state.common import insert_of, table_of

SQLITE_BUSY_MS = 30_000  # the engine-wide busy timeout (see db._sqlite_pragmas)
MAX_RENEWAL_SECONDS = 10.0


def renewal_timeout_ms(lease_seconds: float) -> int:
    """A renewal must end well inside the lease it renews."""
    return max(100, int(1000 * min(MAX_RENEWAL_SECONDS, lease_seconds / 4)))


def _db_now(dialect: str, plus_seconds: float = 0.0) -> Any:
    if dialect == "postgresql":
        return func.now() + literal(timedelta(seconds=plus_seconds))
    # SQLite keeps datetimes as text; this is the format SQLAlchemy writes and reads back.
    stamp = func.strftime("%Y-%m-%d %H:%M:%f", "now", f"{plus_seconds:+.3f} seconds")
    return stamp.concat("000")


def acquire(session: Session, dialect: str, name: str, holder: str, seconds: float,
            now: datetime | None = None) -> bool:
    """Take or renew the named lease; True when this holder has it for `seconds` more.
    `now` is for tests that travel in time; the agent always uses the database's clock."""
    t = table_of(m.Lease)
    _limit_statement_time(session, dialect, renewal_timeout_ms(seconds))
    current: Any = now if now is not None else _db_now(dialect)
    until: Any = (now + timedelta(seconds=seconds)) if now is not None \
        else _db_now(dialect, seconds)
    values = insert_of(session, t).values(name=name, holder=holder, expires_at=until)
    stmt = values.on_conflict_do_update(
        index_elements=["name"],
        set_={"holder": values.excluded.holder, "expires_at": values.excluded.expires_at},
        where=or_(t.c.expires_at < current, t.c.holder == holder),
    ).returning(t.c.holder)
    try:
        won = session.execute(stmt).scalar_one_or_none()
    finally:
        _restore_statement_time(session, dialect)
    return won == holder


def _limit_statement_time(session: Session, dialect: str, timeout_ms: int) -> None:
    if dialect == "postgresql":  # SET LOCAL ends with the transaction
        session.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
    else:
        session.connection().exec_driver_sql(f"PRAGMA busy_timeout = {int(timeout_ms)}")


def _restore_statement_time(session: Session, dialect: str) -> None:
    if dialect != "postgresql":
        session.connection().exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")


def release(session: Session, name: str, holder: str) -> None:
    session.execute(delete(m.Lease).where(m.Lease.name == name, m.Lease.holder == holder))


def all_leases(session: Session) -> list[dict[str, Any]]:
    return [{"name": r.name, "holder": r.holder, "expires_at": r.expires_at}
            for r in session.scalars(select(m.Lease).order_by(m.Lease.name))]
