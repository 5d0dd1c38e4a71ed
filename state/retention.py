"""History kept for a while only: the run history and the change-latency samples.

Both grow with time, not with the org: one `runs` row per cycle (a cycle a minute is 525,600
rows a year) and one `change_latency` row per completed write. Everything else in the state DB
is bounded by the org's size (one row per record, person, field write or timer) or is what the
reports need for good (stage history, decisions), so these two are the only tables pruned.

Rows go in batches, each its own short transaction, oldest first: a prune never holds a lock
long enough to stall a cycle or another agent's lease renewal, and an interrupted prune has
still removed whole batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from state import models as m
from state.common import Sessions

BATCH = 5_000


@dataclass(frozen=True)
class Pruned:
    """Rows removed by one prune, and whether older rows are still left (the cap was hit)."""

    runs: int = 0
    latency: int = 0
    more_left: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "change_latency": self.latency, "more_left": self.more_left}


def _delete_batch(session: Session, table: Any, older: Any, batch: int) -> int:
    # DELETE ... WHERE id IN (the oldest `batch` ids): both SQLite and Postgres accept it,
    # unlike DELETE ... LIMIT, and it walks the table's index on the time column.
    ids = select(table.id).where(older).order_by(table.id).limit(batch).scalar_subquery()
    result = session.execute(delete(table).where(table.id.in_(ids)))
    return int(getattr(result, "rowcount", 0) or 0)


def _targets(before: datetime) -> dict[str, tuple[Any, Any]]:
    # A run is judged by when it started: one still `running` that old was killed long ago.
    # A latency sample by its UTC day, the column sync health groups it by (and indexes).
    return {"runs": (m.Run, m.Run.started_at < before),
            "latency": (m.ChangeLatency, m.ChangeLatency.day < before.date())}


class RetentionStore:
    """Removes run history and latency samples older than a cut-off, a batch at a time."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def prune(self, before: datetime, *, batch: int = BATCH,
              max_rows: int = 1_000_000) -> Pruned:
        """Delete rows older than `before`, at most `max_rows` per table in this call;
        `more_left` says a later call has more to do."""
        counts: dict[str, int] = {}
        more_left = False
        for name, (table, older) in _targets(before).items():
            counts[name], left = self._prune_table(table, older, batch, max_rows)
            more_left = more_left or left
        return Pruned(runs=counts["runs"], latency=counts["latency"], more_left=more_left)

    def _prune_table(self, table: Any, older: Any, batch: int, max_rows: int
                     ) -> tuple[int, bool]:
        removed = 0
        while removed < max_rows:
            size = min(batch, max_rows - removed)
            with self._sessions.write() as session:
                gone = _delete_batch(session, table, older, size)
            removed += gone
            if gone < size:
                return removed, False
        return removed, self._any_older(table, older)

    def _any_older(self, table: Any, older: Any) -> bool:
        with self._sessions.read() as session:
            return session.scalar(select(table.id).where(older).limit(1)) is not None
