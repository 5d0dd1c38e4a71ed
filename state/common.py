"""Small helpers every state module shares (no ORM sessions of their own)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table

from state import models as m

CHUNK_ROWS = 5_000


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
