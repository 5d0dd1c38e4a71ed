"""Data-quality items: an ambiguous match, a value no translation knows, a field refused.

A cycle can find hundreds of such items; `FlagStore.many` records them all in one transaction
rather than a commit each. A key already present keeps its row and gets the latest detail, so
the same problem stays one item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from state import models as m
from state.common import Sessions, table_of, upsert, utcnow
from state.db import driver_rows, listed, one_of


@dataclass(frozen=True)
class Flag:
    """One data-quality item: ``key`` is stable, so the same problem is one row."""

    kind: str
    key: str
    detail: dict[str, Any]


class FlagStore:
    """Unresolved data-quality items, one per key."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def flag(self, kind: str, key: str, detail: dict[str, Any],
             now: datetime | None = None) -> None:
        """Record one item (upsert by key)."""
        self.many([Flag(kind, key, detail)], now)

    def many(self, flags: Sequence[Flag], now: datetime | None = None) -> int:
        """Record every flag (upsert by key) in one transaction; returns how many were given."""
        unique = {f.key: f for f in flags}   # the last detail wins within one call
        if not unique:
            return 0
        when = now or utcnow()
        rows = [{"kind": f.kind, "key": f.key, "detail": f.detail, "created_at": when,
                 "resolved": False} for f in unique.values()]
        with self._sessions.write() as session:
            upsert(session, table_of(m.DataQualityItem), rows, ["key"], ["detail"])
        return len(rows)

    def open_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these keys are unresolved items (one indexed read, the keys one
        parameter: db.one_of; each chunk of an evaluation asks for its persons' e-mails)."""
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        t, dialect = table_of(m.DataQualityItem), self._sessions.dialect
        query = select(t.c.key).where(one_of(dialect, t.c.key), t.c.resolved.is_(False))
        with self._sessions.read() as session:
            return {key for (key,) in driver_rows(session, query,
                                                  {"ids": listed(dialect, wanted)})}

    def items_of(self, kinds: Sequence[str], limit: int = 100_000) -> list[dict[str, Any]]:
        """The unresolved items of these kinds, oldest first."""
        t = m.DataQualityItem
        with self._sessions.read() as session:
            rows = session.execute(select(t.kind, t.key, t.detail).where(
                t.resolved.is_(False), t.kind.in_(list(kinds))).order_by(t.id).limit(limit))
            return [{"kind": kind, "key": key, "detail": detail} for kind, key, detail in rows]

    def items(self, limit: int = 100) -> list[dict[str, Any]]:
        """The unresolved items, oldest first."""
        t = m.DataQualityItem
        with self._sessions.read() as session:
            rows = session.scalars(select(t).where(t.resolved.is_(False)).order_by(t.id)
                                   .limit(limit))
            return [{"kind": r.kind, "key": r.key, "detail": r.detail} for r in rows]
