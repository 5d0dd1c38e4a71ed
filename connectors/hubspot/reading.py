"""Reading one HubSpot stream: a table from each :class:`~connectors.hubspot.streams.ReadMode`
to its reader. Searchable objects are read by the sweep (sweep.py); the archived contacts and
the owners are lists without a date filter, read whole; web events come from the events API,
or from contact analytics properties on a portal without it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from connectors.base import Cursor, Page, Progress, ProgressCallback, RemoteRecord, StreamSpec
from connectors.cursor import CursorWindow, fingerprint, record_key
from connectors.hubspot import own_writes, paging, streams
from connectors.hubspot.associations import Associations
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.limits import LIST_PAGE
from connectors.hubspot.streams import ReadMode, read_mode
from connectors.hubspot.sweep import Records, SearchSweep
from syncagent.errors import FatalError

log = structlog.get_logger(__name__)

Reader = Callable[[StreamSpec, Cursor | None, datetime, ProgressCallback | None],
                  Iterator[Page]]
Walk = Iterable[tuple[dict[str, Any], str | None]]


class StreamReader:
    """Reads a stream by its read mode; learns on the first events read whether the portal
    has the events API (``events_available``)."""

    def __init__(self, client: HubSpotClient, *, lookback: timedelta,
                 own_writes_seen: own_writes.OwnWrites, streams_by_name: Mapping[str, StreamSpec]
                 ) -> None:
        self.client = client
        self.lookback = lookback
        self.streams = streams_by_name
        self.events_available: bool | None = None
        self.sweep = SearchSweep(client, lookback=lookback, own_writes_seen=own_writes_seen,
                                 associations=Associations(client))
        self._readers: dict[ReadMode, Reader] = {
            ReadMode.SEARCH: self.sweep.read, ReadMode.ARCHIVED: self.archived,
            ReadMode.OWNERS: self.owners, ReadMode.EVENTS: self.events}

    def read(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
             progress: ProgressCallback | None) -> Iterator[Page]:
        return self._readers[read_mode(spec)](spec, cursor, start, progress)

    def archived(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
                 progress: ProgressCallback | None) -> Iterator[Page]:
        """Archived contacts -> deletions (the list API has no date filter: read it all, emit
        those archived inside the window that were not emitted before)."""
        window = CursorWindow(cursor, lookback=self.lookback, cycle_start=start)
        lower = window.lower

        def convert(rows: list[dict[str, Any]]) -> Records:
            out: Records = []
            for row in rows:
                when = streams.parse_time(row.get("archivedAt") or row.get("updatedAt"))
                if when is None or (lower is not None and when < lower):
                    continue
                if window.admit(str(row["id"]), when):
                    out.append(RemoteRecord(system="hubspot", object=spec.object,
                                            id=str(row["id"]), fields=row.get("properties")
                                            or {}, modstamp=when, deleted=True))
            return out

        def fetch(after: str | None) -> dict[str, Any]:
            return self.client.list_page(spec.object, after=after, limit=LIST_PAGE,
                                         archived=True, properties=spec.fields)

        # the list is in id order, not time order: the cursor moves only at the end
        return _list_pages(spec, spec.object, paging.walk(fetch), convert,
                           lambda done: window.cursor(complete=True) if done
                           else (cursor or Cursor()), progress)

    def owners(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
               progress: ProgressCallback | None) -> Iterator[Page]:
        """Owners: a short list without a date filter, read whole; only owners that are new or
        changed since the last read are emitted (the cursor keeps every owner's version key)."""
        scan = _OwnerScan(start, cursor)
        return _list_pages(spec, "owners", paging.walk(self.client.owners_page), scan.convert,
                           scan.cursor, progress)

    def events(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
               progress: ProgressCallback | None) -> Iterator[Page]:
        """Web events; when the portal has no events API (403/404), contact analytics."""
        if self.events_available is False:
            yield from self.analytics(spec, cursor, start, progress)
            return
        window = CursorWindow(cursor, lookback=self.lookback, cycle_start=start)
        walk = paging.walk(lambda after: self.client.events_page(occurred_after=window.lower,
                                                                 after=after))
        try:
            first = next(walk)
        except FatalError as exc:
            if exc.fields.get("status") not in (403, 404):
                raise
            log.warning("hubspot.events_unavailable", status=exc.fields.get("status"),
                        fallback="contact analytics properties")
            self.events_available = False
            yield from self.analytics(spec, cursor, start, progress)
            return
        self.events_available = True

        def convert(rows: list[dict[str, Any]]) -> Records:
            out: Records = []
            for event in rows:
                when = streams.parse_time(event.get("occurredAt"))
                if when is None or not window.admit(str(event.get("id")), when):
                    continue
                activity = streams.event_activity(event)
                if activity is not None:
                    out.append(activity)
            return out

        yield from _list_pages(spec, "events", itertools.chain([first], walk), convert,
                               lambda done: window.cursor(complete=done), progress)

    def analytics(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
                  progress: ProgressCallback | None) -> Iterator[Page]:
        """The events stream read from contacts' analytics counters, by a contacts sweep."""
        contacts = self.streams.get("contacts") or streams.STREAMS_BY_NAME["contacts"]
        spec = StreamSpec(name=spec.name, system="hubspot", object="contacts",
                          fields=streams.ANALYTICS_PROPERTIES,
                          cursor_field=contacts.cursor_field, kind="activities",
                          options={"mode": ReadMode.SEARCH})
        return self.sweep.read(spec, cursor, start, progress, analytics=True)


@dataclass
class _OwnerScan:
    """One read of the owners list: what was seen, and the newest change among it."""

    start: datetime
    previous: Cursor | None
    seen: set[str] = field(default_factory=set)
    high: datetime | None = None

    def __post_init__(self) -> None:
        self.known = self.previous.boundary_ids if self.previous else frozenset()
        self.high = self.previous.modstamp if self.previous else None

    def convert(self, rows: list[dict[str, Any]]) -> Records:
        out: Records = []
        for row in rows:
            when = streams.parse_time(row.get("updatedAt")) or self.start
            self.high = max(filter(None, [self.high, min(when, self.start)]))
            key = record_key(str(row["id"]), when, fingerprint(row))
            self.seen.add(key)
            if key not in self.known:
                out.append(RemoteRecord(system="hubspot", object="owners", id=str(row["id"]),
                                        fields=dict(row), modstamp=when,
                                        deleted=bool(row.get("archived"))))
        return out

    def cursor(self, done: bool) -> Cursor:
        # mid-list pages keep the old keys, so a stop re-emits rather than skips
        keys = frozenset(self.seen) if done else frozenset(self.known | self.seen)
        return Cursor(modstamp=self.high, boundary_ids=keys)


def _list_pages(spec: StreamSpec, obj: str, walk: Walk,
                convert: Callable[[list[dict[str, Any]]], Records],
                cursor_at: Callable[[bool], Cursor],
                progress: ProgressCallback | None) -> Iterator[Page]:
    """One Page per page of a list read whole: its converted rows, and the cursor to commit
    with them (``cursor_at(done)``)."""
    emitted = 0
    for pages, (data, after) in enumerate(walk, start=1):
        records = convert(list(data.get("results") or []))
        emitted += len(records)
        if progress is not None:
            progress(Progress("hubspot", spec.name, emitted, pages, None))
        done = after is None
        yield Page(stream=spec.name, object=obj, records=records, cursor=cursor_at(done),
                   done=done)
