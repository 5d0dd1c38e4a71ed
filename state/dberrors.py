"""Database errors mapped at the store boundary, as the connectors map HTTP errors.

SQLAlchemy's errors print the SQL statement and its row parameters, and driver messages can
hold record values; neither may reach a message or a log. `install` hooks the engine so that
every driver error is replaced, where it is raised, by one of the classes below: a message that
names the state DB (the file, or the URL without its password), what happened and what to do,
built only from the driver's error class and SQLite's fixed messages. It also cleans every
parameter before it reaches the driver (state/sanitise.py), so a NUL byte or a lone surrogate
in remote data cannot fail a write.

Which errors a retry can fix:
- locked (another writer holds SQLite's lock past the busy timeout; a Postgres lock timeout,
  deadlock or serialization failure) and a lost connection are Retryable: the cycle fails,
  the next one starts on a fresh connection (the pool drops a disconnected one);
- a corrupt, truncated or read-only file, a schema that does not match, a refused value and a
  DB migrated by a newer syncagent are Fatal: the operator must act.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from state.sanitise import clean_parameters
from syncagent.errors import FatalError, RetryableError, SyncAgentError

log = structlog.get_logger(__name__)

#: The execution option of statements whose parameters were cleaned already (every text
#: value, in common.execute_rows): they are not cleaned again on their way to the driver.
CLEANED_OPTION = "syncagent_cleaned"

#: How long SQLite waits for another writer's lock before a write fails (its own retry loop).
SQLITE_BUSY_SECONDS = 30.0


class StateDBError(SyncAgentError):
    """Something went wrong in the state DB (never carries SQL or row values)."""

    default_hint = "Check the state DB named in the message."


class StateLocked(StateDBError, RetryableError):
    """Another writer held the lock for longer than the bounded wait."""


class StateUnavailable(StateDBError, RetryableError):
    """The connection to the state DB was lost or refused."""


class StateCorrupt(StateDBError, FatalError):
    """The state DB file is not a database, or is damaged or truncated."""

    needs_a_person = True  # every later cycle would fail the same way: `run` stops


class StateReadOnly(StateDBError, FatalError):
    """The state DB cannot be written (file permissions, a read-only mount or server)."""

    needs_a_person = True  # every later cycle would fail the same way: `run` stops


class StateSchemaMismatch(StateDBError, FatalError):
    """The DB's schema is missing, older or newer than this version of syncagent."""

    needs_a_person = True  # every later cycle would fail the same way: `run` stops


class StateRefused(StateDBError, FatalError):
    """The database refused a statement (a constraint or a value it cannot hold)."""


_SQLITE_MESSAGES: tuple[tuple[str, type[StateDBError], str, str], ...] = (
    ("locked", StateLocked, "is locked by another writer (waited {busy:.0f} s)",
     "Another syncagent or a tool holds a write lock on it; the next cycle tries again. If "
     "this persists, stop the other process."),
    ("readonly", StateReadOnly, "is read-only",
     "Give the agent's user write access to the file and its folder, or point state_url "
     "elsewhere."),
    ("unable to open", StateReadOnly, "cannot be opened",
     "Check the folder exists and the agent may create and write files in it."),
    ("not a database", StateCorrupt, "is not a database file (damaged, truncated or another "
     "kind of file)", "Restore it from a backup, or move it aside and run `syncagent db "
     "upgrade` to start a fresh state (the next sync re-reads everything)."),
    # SQLite's own texts for a damaged file; a bare "malformed" would also take a JSON
    # function's "malformed JSON" (a bad value in one row) for a damaged database.
    ("database disk image is malformed", StateCorrupt,
     "is damaged (the database image is malformed)",
     "Restore it from a backup, or move it aside and run `syncagent db upgrade` to start "
     "a fresh state (the next sync re-reads everything)."),
    ("malformed database schema", StateCorrupt, "is damaged (its schema is malformed)",
     "Restore it from a backup, or move it aside and run `syncagent db upgrade` to start "
     "a fresh state (the next sync re-reads everything)."),
    ("disk i/o", StateCorrupt, "could not be read or written (disk I/O error)",
     "Check the disk and the file; restore from a backup if it is damaged."),
    ("no such table", StateSchemaMismatch, "has no syncagent schema (or an older one)",
     "Run `syncagent db upgrade` with the same --state."),
    ("no such column", StateSchemaMismatch, "has an older syncagent schema",
     "Run `syncagent db upgrade` with the same --state."),
)

_POSTGRES_CLASSES: dict[str, tuple[type[StateDBError], str]] = {
    "LockNotAvailable": (StateLocked, "a row or table lock was not granted in time"),
    "DeadlockDetected": (StateLocked, "a deadlock with another agent was broken"),
    "SerializationFailure": (StateLocked, "a concurrent update conflicted"),
    "ReadOnlySqlTransaction": (StateReadOnly, "the server accepts only reads"),
    "InsufficientPrivilege": (StateReadOnly, "the DB user may not write here"),
    "UndefinedTable": (StateSchemaMismatch, "the syncagent schema is missing"),
    "UndefinedColumn": (StateSchemaMismatch, "the syncagent schema is older"),
}


def translate(orig: BaseException | None, *, label: str, is_disconnect: bool
              ) -> StateDBError:
    """The syncagent error for one driver error; built from its class and SQLite's fixed
    texts only (Postgres messages and details can quote row values, so they are never read)."""
    kind = type(orig).__name__ if orig is not None else "unknown"
    if is_disconnect:
        return StateUnavailable(
            f"lost the connection to the state DB {label} ({kind})",
            hint="This cycle failed; the next one reconnects. Check the database server if "
                 "it keeps happening.", db=label, code=kind)
    if type(orig).__module__.startswith("sqlite3"):
        text = str(orig).lower()
        for needle, cls, what, hint in _SQLITE_MESSAGES:
            if needle in text:
                return cls(f"the state DB {label} " + what.format(busy=SQLITE_BUSY_SECONDS),
                           hint=hint, db=label, code=kind)
    found = _POSTGRES_CLASSES.get(kind)
    if found is not None:
        cls, what = found
        return cls(f"the state DB {label}: {what} ({kind})", hint=cls.default_hint, db=label,
                   code=kind)
    if kind in ("OperationalError", "InterfaceError"):
        return StateUnavailable(f"the state DB {label} is unreachable ({kind})",
                                hint="Check --state / state_url, and that the database server "
                                     "is running.", db=label, code=kind)
    return StateRefused(f"the state DB {label} refused a statement ({kind})",
                        hint="This is a syncagent bug or a value it should have cleaned; "
                             "please report it with the log line.", db=label, code=kind)


def install(engine: Engine, label: str) -> None:
    """Map every driver error of this engine, and clean every parameter before it is sent."""

    def on_error(context: Any) -> BaseException | None:
        if not isinstance(context.sqlalchemy_exception, DBAPIError):
            # Our own code failed binding a value (a naive datetime, say): raise that error
            # itself, not SQLAlchemy's wrapper, which would print the statement.
            return context.original_exception
        error = translate(context.original_exception, label=label,
                          is_disconnect=bool(context.is_disconnect))
        log.warning("state db error", error=type(error).__name__, code=error.fields["code"],
                    db=label)
        raise error

    def before_execute(_conn: Any, _cursor: Any, statement: str, parameters: Any,
                       context: Any, _executemany: bool) -> tuple[str, Any]:
        if context is not None and context.execution_options.get(CLEANED_OPTION):
            return statement, parameters   # common.execute_rows cleaned them, column by column
        return statement, clean_parameters(parameters)

    event.listen(engine, "handle_error", on_error)
    event.listen(engine, "before_cursor_execute", before_execute, retval=True)



def _revisions() -> tuple[str, frozenset[str]]:
    """This code's newest migration and every one it knows."""
    from state.db import shipped_revisions  # state.db imports this module

    return shipped_revisions()


def refuse_newer(revision: str | None, *, label: str) -> None:
    """`db upgrade` on a DB another syncagent migrated further: refuse, naming both."""
    _head, known = _revisions()
    if revision is not None and revision not in known:
        check_revision(revision, label=label)


def check_revision(revision: str, *, label: str) -> None:
    """Refuse a DB whose schema is not this code's: newer (another syncagent migrated it) or
    older (run `db upgrade`). Writing with the wrong schema could lose or corrupt state."""
    head, known = _revisions()
    if revision == head:
        return
    if revision not in known:
        raise StateSchemaMismatch(
            f"the state DB {label} is at schema revision {revision}, newer than this "
            f"syncagent knows (its newest is {head})",
            hint="Run the syncagent version that migrated it (or newer); never downgrade "
                 "the agent against a migrated DB.", db=label, code="SCHEMA_TOO_NEW",
            revision=revision, head=head)
    raise StateSchemaMismatch(
        f"the state DB {label} is at schema revision {revision}; this syncagent needs {head}",
        hint="Run `syncagent db upgrade` with the same --state.", db=label,
        code="SCHEMA_OLD", revision=revision, head=head)
