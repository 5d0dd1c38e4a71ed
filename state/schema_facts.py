"""The cached schema facts of each system (see models.SchemaFacts): save, and load with age.

Facts hold names, types, options and access flags of fields and properties, never record
values or credentials.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from state import models as m
from state.common import Sessions, utcnow


class SchemaFactsStore:
    """Facts per system, each with the moment it was read."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def save(self, system: str, facts: dict[str, Any], at: datetime | None = None) -> None:
        moment = at or utcnow()
        with self._sessions.write() as session:
            session.execute(delete(m.SchemaFacts).where(m.SchemaFacts.system == system))
            session.add(m.SchemaFacts(system=system, facts=facts, fetched_at=moment))

    def load(self) -> dict[str, tuple[dict[str, Any], datetime]]:
        """system -> (facts, when they were read)."""
        with self._sessions.read() as session:
            rows = session.execute(select(m.SchemaFacts)).scalars().all()
            return {r.system: (dict(r.facts or {}), r.fetched_at) for r in rows}

    def forget(self) -> None:
        """Drop every cached fact (the next check reads them again)."""
        with self._sessions.write() as session:
            session.execute(delete(m.SchemaFacts))
