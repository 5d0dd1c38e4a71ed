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
