"""A push's results, recorded in one transaction: the outbox rows settled (done, retry or
dead letter), the values written merged into the mirror, and created records linked to
their persons.

One transaction for all three (for one batch, or a few batches together) instead of one
each: a crash can no longer leave a row done whose values the mirror never took or whose
created record was never linked, and a push costs the state DB one commit per batch or less
instead of three. The stores' own methods do the work (``OutboxStore.complete``,
``MirrorStore.record_written``, ``PersonStore.link``) through ``Joined``, which hands each of
them the one open session instead of a new one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from state.common import Sessions
from state.mirror import MirrorStore
from state.outbox import OutboxResult, OutboxStore
from state.persons import PersonStore

# (system, object, remote id, person id, how it was linked)
Link = tuple[str, str, str, int, str]


@dataclass(frozen=True)
class RecordedBatch:
    """What one sent batch's answers change in the state DB."""

    system: str
    object: str
    outcomes: Sequence[OutboxResult]
    written: dict[str, dict[str, Any]] = field(default_factory=dict)  # remote id -> values
    links: Sequence[Link] = ()   # created records -> their persons

    @property
    def row_ids(self) -> list[int]:
        return [outcome.id for outcome in self.outcomes]


class Joined(Sessions):
    """Sessions that hand every store the one session already open, so each store call
    joins its transaction instead of committing on its own."""

    def __init__(self, session: Session) -> None:   # no maker: it never opens a session
        self._session = session
        self.dialect = session.get_bind().dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        yield self._session

    @contextmanager
    def write(self) -> Iterator[Session]:
        yield self._session


def record(session: Session, batches: Sequence[RecordedBatch], now: datetime) -> None:
    """The batches' results inside the caller's transaction. Rows are settled in id order
    (two transactions that lock outbox rows in one order cannot deadlock each other on
    them); a row no longer in flight is left as it is (see ``outbox.complete``)."""
    joined = Joined(session)
    outcomes = sorted((o for batch in batches for o in batch.outcomes), key=lambda o: o.id)
    OutboxStore(joined).complete(outcomes, now=now)
    mirror = MirrorStore(joined)
    for batch in batches:
        if batch.written:
            mirror.record_written(batch.system, batch.object, batch.written, now)
    links = [link for batch in batches for link in batch.links]
    if links:  # a create that found an existing record never takes it from its person
        PersonStore(joined).link(links, now, keep_existing=True)
