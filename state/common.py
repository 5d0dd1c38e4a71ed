"""What every per-concern store shares: the session source, bulk upserts, chunking."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from state import models as m

CHUNK_ROWS = 5_000
IN_LIST = 900  # ids per IN (...): under SQLite's 999 bound parameters


class Sessions:
    """Where every per-concern store gets its Session: `read()` for a query, `write()` for
    one transaction (committed on success, rolled back on any exception). Each call opens its
    own session, so the stores are safe to share between threads."""

    def __init__(self, maker: sessionmaker[Session], dialect: str) -> None:
        self._maker = maker
        self.dialect = dialect

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._maker() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._maker() as session, session.begin():
            yield session


class OneConnection(Sessions):
    """`Sessions` that all run on one connection, one session at a time (threads take
    turns): for a phase whose many small transactions would otherwise each take a pooled
    connection. SQLite drops a connection's page cache whenever another connection has
    written, so a pull whose two systems committed on two connections read the upper pages
    of every index from disk again for each page; on one connection they stay cached."""

    def __init__(self, connection: Connection, dialect: str) -> None:
        super().__init__(sessionmaker(bind=connection, expire_on_commit=False), dialect)
        # re-entrant: a store call made while this thread's session is open must not hang
        self._turn = threading.RLock()

    @contextmanager
    def read(self) -> Iterator[Session]:
        # The session ends its own transaction when it closes, so no read keeps a snapshot
        # (SQLite: the WAL could not be checkpointed past it) between two calls.
        with self._turn, super().read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._turn, super().write() as session:
            yield session


def insert_of(session: Session, table: Table) -> Any:
    """The dialect's INSERT (both have ON CONFLICT), for the DB this session is bound to."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(session: Session, table: Table, rows: Sequence[dict[str, Any]],
           keys: Sequence[str], update_columns: Sequence[str], where: Any = None) -> None:
    """Insert rows, or update `update_columns` of the row with the same `keys` (only where
    `where(excluded)` holds, when given); one executemany per chunk."""
    if not rows:
        return
    stmt = insert_of(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: stmt.excluded[name] for name in update_columns},
        where=where(stmt.excluded) if where is not None else None,
    )
    execute_rows(session, stmt, rows)


def insert_ignore(session: Session, table: Table, rows: Sequence[dict[str, Any]],
                  keys: Sequence[str]) -> None:
    """Insert rows whose `keys` are new; rows already there stay as they are."""
    if not rows:
        return
    stmt = insert_of(session, table).on_conflict_do_nothing(index_elements=list(keys))
    execute_rows(session, stmt, rows)


def execute_rows(session: Session, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """``session.execute(stmt, rows)``: one executemany per chunk of rows (each a dict with
    the keys of the first), with every row's values bound in one pass.

    SQLAlchemy's executemany builds and processes a parameter dict per row in Python (about a
    tenth of a rescore's CPU, on decisions and outbox rows); here the statement is compiled
    once per call, each column type's processor (JSON text, UTC datetimes) is looked up once,
    and the driver gets plain tuples or dicts: the same SQL and the same bound values, through
    the engine's events (parameter cleaning, error translation) as ever. A statement that
    needs values SQLAlchemy makes at execution (a column's Python-side default missing from
    the rows) goes the ordinary way."""
    if not rows:
        return
    keys = list(rows[0])
    connection = session.connection()
    dialect = connection.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=keys, for_executemany=True)
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.postfetch:
        for chunk in chunks(rows):
            session.execute(stmt, list(chunk))
        return
    names = (list(compiled.positiontup or ()) if compiled.positional
             else sorted(set(compiled.bind_names.values())))
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    processors = [binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                  for name in names]
    given = set(keys)
    fixed = {i: (p(binds[name].value) if p is not None else binds[name].value)
             for i, (name, p) in enumerate(zip(names, processors, strict=True))
             if name not in given}
    # (name, processor) of the row's own values; a fixed value's slot is filled in after
    plan = [(name if name in given else None, p) for name, p in zip(names, processors,
                                                                    strict=True)]

    def bound(row: Mapping[str, Any]) -> list[Any]:
        values = [None if name is None else row[name] if p is None else p(row[name])
                  for name, p in plan]
        for i, value in fixed.items():
            values[i] = value
        return values

    for chunk in chunks(rows):
        params: list[Any] = ([tuple(bound(row)) for row in chunk] if compiled.positional
                             else [dict(zip(names, bound(row), strict=True)) for row in chunk])
        connection.exec_driver_sql(compiled.string, params)


def table_of(model: type[m.Base]) -> Table:
    """The Core table of a model (typed as a Table, which is what it is)."""
    return cast(Table, model.__table__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def chunks(rows: Sequence[Any], size: int = CHUNK_ROWS) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def rowcount(result: Any) -> int:
    """Rows an UPDATE or DELETE touched (0 when the driver cannot tell)."""
    return int(getattr(result, "rowcount", 0) or 0)


def missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite state DB that does not exist yet (None for Postgres, or when it
    exists): a health check must say "no state DB" rather than create an empty one."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # an unparsable URL is reported by the store itself, without the URL
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return None if Path(parsed.database).is_file() else parsed.database
