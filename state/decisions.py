"""The latest decision per person: grade, score, segment, stage, owner, track and reasons.

Decisions are written only by `StateStore.commit_evaluation`, together with the outbox rows
planned from them (`save`); `DecisionStore` reads them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from state import models as m
from state.common import IN_LIST, Sessions, chunks, table_of, upsert

COLUMNS = ("grade", "score", "segment", "stage", "owner", "track", "mql_date", "reasons",
           "evaluated_at")


def save(session: Session, decisions: Sequence[dict[str, Any]]) -> None:
    """Upsert decisions by person id (each a dict of `person_id` and the COLUMNS)."""
    upsert(session, table_of(m.Decision), decisions, ["person_id"], COLUMNS)


class DecisionStore:
    """Reads of the stored decisions."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def of(self, person_ids: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        """person id -> its decision as a dict of columns (every person's when `None`)."""
        query = select(m.Decision)
        with self._sessions.read() as session:
            if person_ids is None:
                rows = list(session.scalars(query))
            else:
                rows = [r for chunk in chunks(list(person_ids), IN_LIST)
                        for r in session.scalars(query.where(m.Decision.person_id.in_(chunk)))]
        columns = table_of(m.Decision).columns
        return {r.person_id: {c.name: getattr(r, c.name) for c in columns} for r in rows}

    def before(self, person_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """person id -> its stored decision as a new evaluation of it needs it: every column,
        with ``reasons`` cut to the engine's carried ``state`` (all that is read of them).

        The reasons shown to people are ~10 KB a person once parsed, and a chunk's stored
        decisions stay in memory until the chunk is committed, beside the next chunk's (two
        chunks of 1,000 persons: ~20 MB at the end of a backfill, whose settle pass evaluates
        persons that were all evaluated once already). Each row is cut as it is read."""
        table = table_of(m.Decision)
        out: dict[int, dict[str, Any]] = {}
        with self._sessions.read() as session:
            for chunk in chunks(list(person_ids), IN_LIST):
                for row in session.execute(select(table).where(table.c.person_id.in_(chunk))):
                    values = row._asdict()
                    reasons = values.get("reasons") or {}
                    values["reasons"] = {"state": reasons["state"]} if "state" in reasons else {}
                    out[values["person_id"]] = values
        return out
