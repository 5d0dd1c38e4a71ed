"""The state DB's engine and schema: connecting (SQLite pragmas, Postgres pre-ping), the URL
as it may be shown, and the Alembic configuration of the migrations this version ships."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Text,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.orm import Session

from state import dberrors, jsontext, sanitise
from syncagent.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept postgresql:// as shorthand for the psycopg 3 driver we ship."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def safe_url(url: str) -> str:
    """The URL with any password masked: the only form that may reach logs or errors."""
    return make_url(normalise_url(url)).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception:  # sqlalchemy raises ArgumentError with the URL in the message
        raise ConfigError("the state URL is not a valid database URL",
                          hint="Use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB."
                          ) from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, json_serializer=sanitise.dumps,
                               json_deserializer=jsontext.loads, connect_args={
            "timeout": dberrors.SQLITE_BUSY_SECONDS, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        dberrors.install(engine, parsed.database or url)
        return engine
    # (psycopg decodes JSONB itself, with the deserializer SQLAlchemy installs on it)
    engine = create_engine(url, json_serializer=sanitise.dumps,
                           json_deserializer=jsontext.loads, pool_pre_ping=True,
                           connect_args={"connect_timeout": 10})
    dberrors.install(engine, safe_url(url))
    return engine


def one_of(dialect: str, column: ColumnElement[Any], name: str = "ids") -> ColumnElement[bool]:
    """``column`` equals one of the values bound to ``name`` as ONE parameter (`listed`
    makes it): an array on Postgres, a JSON array read by ``json_each`` on SQLite (either
    way the column's index serves it). Unlike ``IN (...)``, whose text grows with the values
    (SQLAlchemy renders a bind per value on every call, psycopg parses each one: ~12% of an
    evaluation worker's CPU on Postgres), the statement is the same whatever the number of
    values: compiled once, cached by the drivers, and with no limit on the number of values.
    Integer columns take integers, every other column text."""
    integers = isinstance(column.type, BigInteger | Integer)
    if dialect == "postgresql":
        array = ARRAY(BigInteger() if integers else Text())
        return column == any_(bindparam(name, type_=array))
    values: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(bindparam(name)))
    return column.in_(values.scalar_subquery())


def listed(dialect: str, values: Iterable[Any]) -> Any:
    """The values as `one_of`'s parameter, each string cleaned as every bound string is
    (sanitise.clean_parameters: the engine's own cleaning sees one list, not its strings)."""
    cleaned = sanitise.clean_parameters(list(values))
    return cleaned if dialect == "postgresql" else json.dumps(cleaned, ensure_ascii=False)


def driver_rows(session: Session, query: Select[Any], params: Mapping[str, Any]
                ) -> Sequence[Any]:
    """The rows of ``query`` as the driver gives them: plain tuples with no result
    processing (the caller converts the few columns that need it, `column_reader`).
    Executing and fetching still go through the engine (its events clean the parameters and
    translate the driver's errors); only SQLAlchemy's Row objects are skipped, which cost
    about 2 us a row: ~10 us a person in an evaluation's reads of activities and records
    (measured on SQLite and Postgres, 20k persons)."""
    result = session.connection().execute(query, params)
    return cast(Sequence[Any], result.cursor_strategy.fetchall(result, result.cursor))


def column_reader(dialect: Dialect, column: ColumnElement[Any]) -> Callable[[Any], Any]:
    """What SQLAlchemy does to this column's driver value (for `driver_rows`): JSON text
    decoded and UTC attached on SQLite, UTC named on Postgres; the value itself if nothing.
    JSON on SQLite: the engine's deserializer called directly (SQLAlchemy's wrapper around it
    is one more Python call a value)."""
    if dialect.name == "sqlite" and isinstance(column.type, JSON):
        return jsontext.read_column
    process = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return process if process is not None else _same


def json_text(dialect: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON column as its stored text, for the caller to decode (jsontext.read_column): on
    Postgres the JSONB comes as text, not through psycopg's JSONB loader (a Python call more
    a value, and every value decoded, even the ``{}`` a caller skips); SQLite stores text."""
    return sql_cast(column, Text) if dialect == "postgresql" else column


def _same(value: Any) -> Any:
    return value


def once_each(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert``, run once per distinct value (the driver's hashable value: a time's text
    or datetime, a JSON text): a chunk's rows repeat a few times and details. The results
    are shared between rows, so only for results nobody changes (a dict is copied). A hit
    is the dict's own look-up, in C; a miss converts (`_Converted.__missing__`)."""
    return _Converted(convert).__getitem__


class _Converted(dict[Any, Any]):
    """Each key's converted value, converted on its first look-up."""

    __slots__ = ("_convert",)

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__()
        self._convert = convert

    def __missing__(self, value: Any) -> Any:
        converted = self[value] = self._convert(value)
        return converted


#: WAL pages before a commit checkpoints them into the database file (SQLite's default is
#: 1,000). A backfill's page commits dirty pages all over the mirror's and activities'
#: indexes, and a checkpoint copies each distinct page back: at 1,000 the same hot pages were
#: copied again every few commits. At 10,000 (a WAL of up to ~40 MB on disk; the wal-index it
#: maps is ~100 KB) the pull read and wrote ~40% fewer bytes. The page cache was no lever:
#: each connection's cache is dropped whenever another one writes, so a larger one cost RSS
#: and saved no CPU (bench/pull_commit.py).
SQLITE_CHECKPOINT_PAGES = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (status, preview) run while a cycle writes; NORMAL is durable in WAL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(dberrors.SQLITE_BUSY_SECONDS * 1000)}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    cursor.close()


def schema_head() -> str:
    """The newest migration revision this version of syncagent ships."""
    return shipped_revisions()[0]


#: ``revision = "0003"`` and ``down_revision = "0002"`` (or None), as Alembic's template
#: writes them, with or without a type annotation.
_REVISION_LINE = re.compile(
    r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:None|[\"']([^\"']+)[\"'])\s*$", re.M)


@cache
def shipped_revisions() -> tuple[str, frozenset[str]]:
    """(the newest revision, every revision) of the migrations this version ships.

    Read from the migration files' ``revision`` lines, not through Alembic: a cycle checks
    its DB's schema before every run, and Alembic's runtime costs the agent ~6 MB of memory
    it otherwise never needs (migrations run from `db upgrade`, which imports it).
    tests/state/test_store.py checks this agrees with Alembic's own reading."""
    revisions: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found = {name: value or None for name, value
                 in _REVISION_LINE.findall(path.read_text(encoding="utf-8"))}
        revision = found.get("revision")
        if revision:
            revisions[revision] = found.get("down_revision")
    parents = set(revisions.values())
    heads = [rev for rev in revisions if rev not in parents]
    if len(heads) != 1:
        raise RuntimeError(f"the shipped migrations must have one head, found {heads}")
    return heads[0], frozenset(revisions)


def current_revision(connection: Connection) -> str | None:
    """The revision stamped in the DB's ``alembic_version`` table (None: no schema yet)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats % as interpolation; the URL is handed over via attributes instead.
    config.attributes["url"] = url
    return config
