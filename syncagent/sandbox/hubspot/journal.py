"""What changed in an object store, so a search can be answered from matches kept up to date.

A CRM search is paged by offset and every page reports the total, so answering each page by
filtering the whole store made a stream of N records cost O(N²) (100k contacts: 500 pages
of 100k records each). Instead the search index (search_index.py) keeps each recent query's
matches sorted and replays only the records changed since its last page. This module is the
bookkeeping beside the records: the journal of changed ids, the records touched recently
(the search index lags writes by a few seconds) and the cached matches. It depends only on
the records' ``id``, ``updated_ms`` and ``archived``, which only the portal's own methods
change (``HubSpotPortal._touch`` and ``merge`` note every change here).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

#: a journal may hold this many entries beyond twice the store's size before it is cut (the
#: matches older than the cut are rebuilt once: O(N) per more than 2N changes)
SLACK = 1024
#: queries kept per store: a sweep pages one query at a time, per stream
CACHED_QUERIES = 4


class Stamped(Protocol):
    """What the journal reads of a record."""

    id: int
    updated_ms: float
    archived: bool


class ChangeJournal:
    """Ids of changed records in order, and the (updated_ms, id) of recent touches."""

    def __init__(self, records: dict[int, Any]) -> None:
        self._records: dict[int, Stamped] = records   # the store's own dict, read live
        self._changes: list[int] = []
        self._base = 0                  # the absolute position of _changes[0]
        self._recent: list[tuple[float, int]] = []
        # every record whose updated_ms is above the floor has its (updated_ms, id) in _recent
        self._floor = -math.inf

    @property
    def end(self) -> int:
        """The absolute position after the last change."""
        return self._base + len(self._changes)

    def note(self, record_id: int, updated_ms: float | None = None) -> None:
        """A record was created, touched or removed (updated_ms None: removed)."""
        self._changes.append(record_id)
        if updated_ms is not None:
            self._recent.append((updated_ms, record_id))
        bound = 2 * len(self._records) + SLACK
        if len(self._changes) > bound:
            self._base, self._changes = self.end, []
        if len(self._recent) > bound:
            self._recent = self._current(self._recent, self._floor)

    def changed_since(self, position: int) -> Iterable[int] | None:
        """The distinct ids changed from that position on (None: cut, rebuild instead)."""
        if position < self._base:
            return None
        return dict.fromkeys(self._changes[position - self._base:])

    def touched_after(self, horizon: float) -> set[int] | None:
        """Ids of the records whose updated_ms is above horizon (None when the journal cannot
        tell: a horizon below one asked before, as when the index's lag grew)."""
        if horizon < self._floor:
            return None
        self._recent = [(ms, rid) for ms, rid in self._recent if ms > horizon]
        self._floor = horizon
        return {rid for ms, rid in self._recent if self._stamp(rid) == ms}

    def _stamp(self, record_id: int) -> float | None:
        record = self._records.get(record_id)
        return None if record is None else record.updated_ms

    def _current(self, recent: list[tuple[float, int]], floor: float,
                 ) -> list[tuple[float, int]]:
        """Each live record's latest touch above the floor, once."""
        latest = {rid: ms for ms, rid in recent if ms > floor}
        return [(ms, rid) for rid, ms in latest.items() if self._stamp(rid) == ms]


@dataclass
class Matches:
    """One query's matching records as sorted keys, current as of a journal position."""

    predicate: Callable[[Any], bool]
    key: Callable[[Any], Any]           # the record's sort key; its id must be recoverable
    position: int = -1
    keys: dict[int, Any] = field(default_factory=dict)     # id -> sort key
    order: list[Any] = field(default_factory=list)         # the sort keys, ascending

    def matches(self, record: Stamped | None) -> bool:
        return record is not None and not record.archived and self.predicate(record)

    def refresh(self, records: dict[int, Any], journal: ChangeJournal) -> None:
        """Bring the matches up to date: replay the changes, or rebuild when they were cut."""
        changed = journal.changed_since(self.position)
        if changed is None:
            self._rebuild(records.values())
        else:
            for record_id in changed:
                self._replay(record_id, records.get(record_id))
        self.position = journal.end

    def _rebuild(self, records: Iterable[Any]) -> None:
        self.keys = {r.id: self.key(r) for r in records if self.matches(r)}
        self.order = sorted(self.keys.values())

    def _replay(self, record_id: int, record: Stamped | None) -> None:
        new = self.key(record) if self.matches(record) else None
        old = self.keys.get(record_id)
        if old == new:
            return
        if old is not None:
            del self.order[bisect_left(self.order, old)]
            del self.keys[record_id]
        if new is not None:
            insort(self.order, new)
            self.keys[record_id] = new


class MatchCache:
    """The last few queries' matches of one store, least recently used dropped first."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, Matches] = OrderedDict()

    def get(self, query: str, make: Callable[[], Matches]) -> Matches:
        entry = self._entries.get(query)
        if entry is None:
            entry = self._entries[query] = make()
            while len(self._entries) > CACHED_QUERIES:
                self._entries.popitem(last=False)
        self._entries.move_to_end(query)
        return entry
