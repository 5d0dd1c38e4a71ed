"""What every per-concern store shares: the session source, bulk upserts, chunking."""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime
from functools import cache
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any, cast

from sqlalchemy import JSON, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from state import dberrors
from state import models as m
from state.arrays import array_sql
from state.arrays import repeats as arrays_repeat
from state.arrays import uniform as arrays_uniform
from state.db import once_each
from state.models import UTCDateTime
from state.sanitise import clean_column, dumps

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


#: Whether each Postgres engine's server can compress with lz4 (asked once per engine).
_LZ4: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def compress_fast(session: Session) -> None:
    """Postgres: the large values this transaction writes compressed with lz4, not pglz (the
    server's default). Most decisions' reasons (~1.75 KB of JSON, more as JSONB) pass the
    TOAST threshold and are compressed: with pglz that cost the server ~50 us a decision,
    about half its commit of one; lz4 takes half of that and reads back faster. The values
    read back the same. SET LOCAL: it ends with the transaction, whatever else uses the
    connection. A server built without lz4 keeps its default."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    engine = bind.engine
    lz4 = _LZ4.get(engine)
    if lz4 is None:
        lz4 = _LZ4[engine] = bool(session.scalar(text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
            "WHERE name = 'default_toast_compression'")))
    if lz4:
        session.execute(text("SET LOCAL default_toast_compression = lz4"))


def insert_of(session: Session, table: Table) -> Any:
    """The dialect's INSERT (both have ON CONFLICT), for the DB this session is bound to."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(session: Session, table: Table, rows: Sequence[Any], keys: Sequence[str],
           update_columns: Sequence[str], where: Any = None,
           shared: Mapping[str, Any] | None = None, fields: Sequence[str] = ()) -> None:
    """Insert rows, or update `update_columns` of the row with the same `keys` (only where
    `where(excluded)` holds, when given); one statement per chunk (`execute_rows`, which
    says what `fields` are). `shared`: values of columns that every row has the same (bound
    once, not read from each row)."""
    if not rows:
        return
    stmt = insert_of(session, table).values(**(shared or {}))
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: stmt.excluded[name] for name in update_columns},
        where=where(stmt.excluded) if where is not None else None,
    )
    execute_rows(session, stmt, rows, unique=keys, fields=fields)


def insert_ignore(session: Session, table: Table, rows: Sequence[Any], keys: Sequence[str],
                  shared: Mapping[str, Any] | None = None, fields: Sequence[str] = ()) -> None:
    """Insert rows whose `keys` are new; rows already there stay as they are. `shared` and
    `fields` as in `upsert`."""
    if not rows:
        return
    stmt = (insert_of(session, table).values(**(shared or {}))
            .on_conflict_do_nothing(index_elements=list(keys)))
    execute_rows(session, stmt, rows, fields=fields)


def execute_rows(session: Session, stmt: Any, rows: Sequence[Any], unique: Sequence[str] = (),
                 fields: Sequence[str] = ()) -> None:
    """``session.execute(stmt, rows)``: one executemany per chunk of rows (each a dict with
    the keys of the first, or with ``fields``, a tuple of those columns' values: `as_tuples`),
    with the rows' values bound column by column.

    SQLAlchemy's executemany builds and processes a parameter dict per row in Python (about a
    tenth of a rescore's CPU, on decisions and outbox rows); here the statement is compiled
    once per call, each column type's processor (JSON text, UTC datetimes) is looked up once
    and mapped over its column, the text is cleaned a column at a time (sanitise.clean_column;
    the JSON serializer cleans its own), and the driver gets a plain tuple per row (named
    parameters made positional): the same SQL and the same bound values, through the
    engine's events (error translation) as ever. A statement that needs values SQLAlchemy
    makes at execution (a column's Python-side default missing from the rows, a column set
    to a SQL expression) goes the ordinary way.

    On Postgres an INSERT takes a chunk in one statement of arrays (state/arrays.py);
    ``unique``: the columns of its ON CONFLICT DO UPDATE key, whose repeats within a chunk
    that statement cannot take (such a chunk goes row by row, as before)."""
    if not rows:
        return
    keys = list(fields or rows[0])
    connection = session.connection()
    dialect = connection.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=keys, for_executemany=True)
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.postfetch:
        for chunk in chunks(rows):
            session.execute(stmt, [dict(zip(keys, row, strict=True)) for row in chunk]
                            if fields else list(chunk))
        return
    sql, names = ((compiled.string, list(compiled.positiontup or ())) if compiled.positional
                  else _positional(compiled.string))
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    at = {key: n for n, key in enumerate(keys)} if fields else {key: key for key in keys}
    slots = [_Slot.of(name, binds[name], dialect, at.get(name)) for name in names]
    whole = _whole_chunks(compiled, dialect, at, binds, unique)
    for chunk in chunks(rows):
        if whole is None or not whole.run(connection, chunk):
            columns = [slot.column(chunk) for slot in slots]
            connection.exec_driver_sql(sql, list(zip(*columns, strict=True)), CLEANED)


def _item_type(type_: Any, dialect: Any) -> str:
    """The SQL type of a column's values in an array: JSON as its text (see array_sql)."""
    if isinstance(type_, JSON):
        return "TEXT"
    return str(type_.dialect_impl(dialect).compile(dialect=dialect))


class _WholeChunk:
    """A Postgres INSERT of a chunk as one statement of arrays (state/arrays.py)."""

    def __init__(self, sql: str, slots: list[_Slot], unique: Sequence[str]) -> None:
        self.sql, self.slots, self.unique = sql, slots, list(unique)

    def run(self, connection: Connection, chunk: Sequence[Any]) -> bool:
        """Insert the chunk; False (nothing done) when it must go row by row."""
        arrays = {slot.name: slot.column(chunk) for slot in self.slots
                  if slot.name is not None}
        if not all(map(arrays_uniform, arrays.values())):
            return False
        if self.unique and arrays_repeat([arrays[name] for name in self.unique]):
            return False
        connection.exec_driver_sql(self.sql, tuple(
            slot.fixed if slot.name is None else arrays[slot.name] for slot in self.slots),
            CLEANED)
        return True


def _whole_chunks(compiled: Any, dialect: Any, at: Mapping[str, Any], binds: Mapping[str, Any],
                  unique: Sequence[str]) -> _WholeChunk | None:
    """The one-statement form of a Postgres INSERT, or None (SQLite; another statement;
    a DO UPDATE whose key columns are not given). ``at``: where each given column's value
    is in a row (its key, or its index in a tuple)."""
    keys = list(at)
    if dialect.name != "postgresql" or not compiled.isinsert:
        return None
    if " DO UPDATE " in compiled.string and not (unique and set(unique) <= set(keys)):
        return None
    sql = array_sql(compiled.string, {key: _item_type(binds[key].type, dialect)
                                      for key in keys if key in binds})
    if sql is None:
        return None
    sql, names = _positional(sql)
    return _WholeChunk(sql, [_Slot.of(name, binds[name], dialect, at.get(name), arrays=True)
                             for name in names], unique)


#: A named parameter of pyformat SQL (Postgres' psycopg; ``b``: bound in binary), or an
#: escaped percent sign.
_NAMED = re.compile(r"%%|%\(([^)]+)\)([sb])")


def _positional(sql: str) -> tuple[str, list[str]]:
    """pyformat SQL (``%(name)s``) as format SQL (``%s``), and the names in their order:
    the driver gets a tuple per row, not a dict it must put in order again (psycopg does
    that in Python, per row; with SQLAlchemy's dict per row, ~6% of a commit's CPU)."""
    order: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "%%"
        order.append(match.group(1))
        return "%" + match.group(2)

    return _NAMED.sub(placeholder, sql), order


#: execute_rows cleans its parameters itself: not again on their way to the driver (each
#: value once: a rescore's commit binds a few hundred thousand).
CLEANED = {dberrors.CLEANED_OPTION: True}


class _Slot:
    """One bound parameter of an executemany: the rows' value under its name, or a constant
    of the statement; made ready for the driver a whole column at a time."""

    def __init__(self, name: str | None, fixed: Any, processor: Any, kind: str,
                 at: Any = None) -> None:
        self.name, self.fixed, self.processor, self.kind = name, fixed, processor, kind
        self.value = itemgetter(at)   # a row's value: under its name, or at its index

    @classmethod
    def of(cls, name: str, bind: Any, dialect: Any, at: str | int | None,
           arrays: bool = False) -> _Slot:
        """``at``: where the rows hold its value (None: a constant of the statement)."""
        given = at is not None
        impl = bind.type.dialect_impl(dialect)
        processor = impl.bind_processor(dialect)
        kind = ("other" if processor is None else "json" if isinstance(bind.type, JSON)
                else "moment" if isinstance(bind.type, UTCDateTime) else "other")
        if kind == "json" and arrays and given:
            # an array's values as JSON text (each cast to JSONB in the SQL), not psycopg's
            # wrappers, which it could not put in one array beside a worker's texts
            processor = dumps   # what the engine's JSON type binds (None: JSON null)
        if given:
            return cls(name, None, processor, kind, at)
        value = bind.value if processor is None else processor(bind.value)
        [value] = [value] if kind == "json" else clean_column([value])
        return cls(None, value, None, kind)

    def column(self, rows: Sequence[Any]) -> Sequence[Any]:
        if self.name is None:
            return repeat(self.fixed, len(rows))   # type: ignore[return-value]
        values = list(map(self.value, rows))
        if self.kind == "json":
            kinds = set(map(type, values))
            if kinds == _UTF8:
                # an evaluation worker's values (pipeline/wire.as_text: nearly all of a
                # rescore's), the text the processor and the serializer (sanitise.dumps)
                # would give, in UTF-8: bound as that text, two calls a value less
                return list(map(_DECODE, values))
            # a worker's beside values made here (a settled person): the serializer
            # (sanitise.dumps) takes its bytes as the text they are
        if self.processor is not None:
            # a datetime processor once per distinct moment of the column: most of a chunk's
            # rows carry the same one or two (the commit's ``now``). Only for UTCDateTime:
            # equal moments in two zones are one key, and its processor gives both one text
            values = list(map(once_each(self.processor) if self.kind == "moment"
                              else self.processor, values))
        # the JSON serializer (sanitise.dumps) hands over clean text only
        return values if self.kind == "json" else clean_column(values)


_UTF8 = {bytes}
_DECODE = bytes.decode


#: A row as the tuple of its fields' values, in their order (`as_tuples`).
RowTuple = tuple[Any, ...]


@cache
def field_names(kind: type) -> tuple[str, ...]:
    """The fields of a row class (a dataclass), in order: the names of its `as_tuples`."""
    return tuple(f.name for f in fields(kind))


def as_tuples(rows: Sequence[Any], kind: type) -> list[RowTuple]:
    """Rows of ``kind`` as tuples of their fields' values (`field_names`), bound by
    position (`execute_rows`' ``fields``), not read from a dict per row: a row object is
    read by attribute, a tuple (an evaluation worker's: pipeline/wire.as_text) is one
    already."""
    getter = attrgetter(*field_names(kind))
    return [row if type(row) is tuple else getter(row) for row in rows]


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
