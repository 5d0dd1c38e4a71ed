"""Migrate the state DB safely when several agents start at once.

Containers of a replicated agent all run `syncagent db upgrade` on start. Alembic alone is
not safe against itself: two processes that both see "no schema" both run CREATE TABLE, and
the slower one fails. So the upgrade runs under a lock every agent shares: on Postgres a
session-level advisory lock (released by the server even if the holder is killed), on SQLite
an exclusive lock on a file beside the database. The second agent waits, then finds the schema
at head and does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from state.store import StateStore, safe_url
from syncagent.errors import ConfigError

# One fixed 64-bit key for "the syncagent schema migration" (advisory locks are per database).
MIGRATION_LOCK_KEY = 0x5960_A6E7_0001


def upgrade_with_lock(store: StateStore) -> tuple[str | None, str]:
    """Upgrade to head under the shared migration lock; return (revision before, after)."""
    with _migration_lock(store):
        before = store.schema_revision()
        after = store.upgrade()
    return before, after


@contextlib.contextmanager
def _migration_lock(store: StateStore) -> Iterator[None]:
    if store.dialect == "postgresql":
        with _postgres_lock(store):
            yield
    elif store.dialect == "sqlite":
        with _file_lock(_sqlite_lock_path(store.url)):
            yield
    else:  # no other dialect is supported by settings; nothing to share a lock with
        yield


@contextlib.contextmanager
def _postgres_lock(store: StateStore) -> Iterator[None]:
    try:
        connection = store.engine.connect()
    except OperationalError as exc:
        raise ConfigError(
            f"cannot migrate: the state DB {safe_url(store.url)} is unreachable "
            f"({type(exc.orig).__name__})",
            hint="Check --state / state_url, and that the database server is running.",
        ) from None
    with connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                               {"key": MIGRATION_LOCK_KEY})
            connection.commit()


def _sqlite_lock_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database + ".migrate-lock")


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX (Windows): one agent per SQLite file is the rule there
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
