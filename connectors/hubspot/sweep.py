"""The incremental search sweep over one HubSpot object.

A sweep reads every record whose modified date lies in ``[cursor - lookback, cycle start]``,
sorted by ``hs_object_id`` ascending and paged with ``paging.next.after``. Before the next page
would cross HubSpot's 10,000-result cap, the sweep restarts with ``hs_object_id > last id seen``
(HubSpot compares ids numerically), so any number of records — even 10,500 sharing one
timestamp — is read without truncation. The upper bound keeps the sweep stable: a record
modified during the sweep moves past it and is read by the next one. Mid-sweep cursors carry
the sweep's :class:`SweepState` (bounds, high-water mark) and the last id, so a stop resumes
exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import (
    ActivityRecord,
    Cursor,
    Page,
    Progress,
    ProgressCallback,
    RemoteRecord,
    StreamSpec,
)
from connectors.cursor import (
    CursorWindow,
    fingerprint,
    from_epoch_ms,
    max_numeric_id,
    to_epoch_ms,
)
from connectors.hubspot import own_writes, paging, streams
from connectors.hubspot.associations import Associations
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.limits import SEARCH_CAP, SEARCH_FILTERS, SEARCH_GROUPS, SEARCH_PAGE
from syncagent.errors import FatalError

Records = list[RemoteRecord | ActivityRecord]
Fresh = list[tuple[dict[str, Any], datetime]]


@dataclass
class SweepState:
    """The fixed bounds of one sweep (epoch ms, remote clock), kept in ``Cursor.sweep``.

    ``upper`` is the cycle start the sweep began at; ``lower`` the re-read bound (None: from
    the beginning); ``high`` the newest modified date seen so far; ``skip`` the intervals of the
    agent's own writes left out of the re-read window (own_writes.py), None when none applied.
    """

    upper: int
    lower: int | None = None
    high: int | None = None
    skip: list[list[int]] | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> SweepState:
        """From ``Cursor.sweep`` as the state DB gives it back (JSON)."""
        skip = data.get("skip")
        return cls(upper=int(data["upper"]), lower=_int_or_none(data.get("lower")),
                   high=_int_or_none(data.get("high")),
                   skip=None if skip is None else [[int(a), int(b)] for a, b in skip])

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form for ``Cursor.sweep`` (``skip`` only when it was set)."""
        out: dict[str, Any] = {"lower": self.lower, "upper": self.upper, "high": self.high}
        if self.skip is not None:
            out["skip"] = [list(pair) for pair in self.skip]
        return out


@dataclass
class _Position:
    """Where a running sweep is: the keyset segment, the page token inside it, the last id."""

    last_id: str | None
    segment_from: str | None = None        # the keyset filter (hs_object_id > this)
    after: str | None = None               # the page token inside the segment
    segment_seen: int = 0                  # rows read in the segment
    pages: int = 0
    emitted: int = 0


class SearchSweep:
    """Runs sweeps; counts keyset restarts (a segment reaching the 10,000-result cap)."""

    def __init__(self, client: HubSpotClient, *, lookback: timedelta,
                 own_writes_seen: own_writes.OwnWrites, associations: Associations) -> None:
        self.client = client
        self.lookback = lookback
        self.own_writes = own_writes_seen
        self.associations = associations
        self.keyset_restarts = 0

    def read(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
             progress: ProgressCallback | None, *, analytics: bool = False) -> Iterator[Page]:
        """The pages of one sweep, resuming the cursor's unfinished sweep if it has one."""
        fetched = self._fetch(spec, cursor, start, progress)
        if analytics:
            for fresh, page in fetched:
                for row, modstamp in fresh:
                    page.records.extend(streams.analytics_activities(row, modstamp))
                yield page
        elif spec.kind == "activities":
            # only engagements that are scoring signals need their contacts looked up
            signals = ((_signal_ids(spec, fresh), (fresh, page)) for fresh, page in fetched)
            for (fresh, page), links in self.associations.linked(spec.object, signals):
                for row, modstamp in fresh:
                    page.records.extend(streams.engagement_activities(
                        spec, row, links.get(str(row["id"]), []), modstamp))
                yield page
        else:
            for fresh, page in fetched:
                page.records.extend(_records(spec, fresh))
                yield page

    def _fetch(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
               progress: ProgressCallback | None) -> Iterator[tuple[Fresh, Page]]:
        """Each search page's rows not seen before, with its Page (records still empty) and
        the cursor to commit with it."""
        state, window, last_id = self._begin(spec, cursor, start)
        hold = cursor.modstamp if cursor else None
        key_floor = from_epoch_ms(state.lower) if state.lower else None
        at = _Position(last_id=last_id, segment_from=last_id)
        while True:
            data = self.client.search(spec.object,
                                      search_body(spec, state, at.segment_from, at.after))
            rows = list(data.get("results") or [])
            at.segment_seen += len(rows)
            fresh = _admitted(spec, window, rows)
            for row in rows:
                at.last_id = max_numeric_id(at.last_id, str(row["id"]))
            at.pages += 1
            at.emitted += len(fresh)
            total = int(data.get("total") or 0)
            next_after = paging.next_after(data)
            if next_after is None:
                _check_complete(spec, total, at.segment_seen)
                page = Page(stream=spec.name, object=spec.object, records=[],
                            cursor=window.cursor(complete=True), done=True)
            else:
                self._advance(at, next_after)
                state.high = to_epoch_ms(window.high) if window.high else None
                floor = key_floor or ((window.high - self.lookback) if window.high else None)
                page = Page(stream=spec.name, object=spec.object, records=[],
                            cursor=window.cursor(last_id=at.last_id, sweep=state.to_dict(),
                                                 hold=hold, key_floor=floor))
            if progress is not None:
                progress(Progress("hubspot", spec.name, at.emitted, at.pages, total or None))
            yield fresh, page
            if page.done:
                return

    def _begin(self, spec: StreamSpec, cursor: Cursor | None, start: datetime
               ) -> tuple[SweepState, CursorWindow, str | None]:
        """The sweep's state, its window and the last id read: the cursor's unfinished sweep,
        or a new one from the cursor to ``start``."""
        if cursor is not None and cursor.sweep:
            # Resuming a stopped sweep: its bounds are fixed. It ends at ITS upper bound, not at
            # today's cycle start, or records changed in between would be skipped.
            state = SweepState.of(cursor.sweep)
            window = CursorWindow(cursor, lookback=self.lookback,
                                  cycle_start=from_epoch_ms(state.upper))
            if state.high is not None:
                window.high = max(filter(None, [window.high, from_epoch_ms(state.high)]))
            return state, window, cursor.last_id
        window = CursorWindow(cursor, lookback=self.lookback, cycle_start=start)
        lower = window.lower
        state = SweepState(upper=to_epoch_ms(start),
                           lower=to_epoch_ms(lower) if lower else None)
        if lower is not None and cursor is not None and cursor.modstamp is not None:
            # the re-read window minus the moments our own writes landed in it
            state.skip = self.own_writes.inside(spec.object, to_epoch_ms(lower),
                                                to_epoch_ms(cursor.modstamp),
                                                most=max_groups(spec) - 1)
        return state, window, None

    def _advance(self, at: _Position, next_after: str) -> None:
        if int(next_after) + SEARCH_PAGE > SEARCH_CAP:
            # the next page would pass the 10,000 cap: restart the keyset after last_id
            self.keyset_restarts += 1
            at.after, at.segment_seen, at.segment_from = None, 0, at.last_id
        else:
            at.after = next_after

def _admitted(spec: StreamSpec, window: CursorWindow, rows: list[dict[str, Any]]) -> Fresh:
    """The rows the cursor window has not emitted before, with their modified dates."""
    fresh: Fresh = []
    for row in rows:
        modstamp = streams.modstamp_of(spec, row) or window.cycle_start
        if window.admit(str(row["id"]), modstamp, fingerprint(row.get("properties") or {})):
            fresh.append((row, modstamp))
    return fresh


def _signal_ids(spec: StreamSpec, fresh: Fresh) -> list[str]:
    return [str(row["id"]) for row, _ in fresh
            if streams.engagement_kind(spec.object, row.get("properties") or {})]


def _records(spec: StreamSpec, fresh: Fresh) -> Records:
    out: Records = []
    for row, modstamp in fresh:
        out.append(streams.to_record(spec, row, modstamp))
        if spec.deletes:
            out.extend(streams.merges_of(spec, row, modstamp))
        if spec.object == "contacts":
            out.extend(streams.email_activities(row))
    return out


def search_body(spec: StreamSpec, state: SweepState, last_id: str | None,
                after: str | None) -> dict[str, Any]:
    """One search request of the sweep: its date range (minus skipped intervals, as an OR of
    filter groups), the keyset filter, id order, and the page token."""
    groups = []
    for lower, upper in own_writes.ranges(state.lower, state.upper, state.skip or ()):
        filters: list[dict[str, Any]] = [
            {"propertyName": spec.cursor_field, "operator": "LTE", "value": str(upper)}]
        if lower is not None:
            filters.append({"propertyName": spec.cursor_field, "operator": "GTE",
                            "value": str(lower)})
        if last_id is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT",
                            "value": last_id})
        filters.extend(dict(f) for f in spec.options.get("filters") or ())
        groups.append({"filters": filters})
    body: dict[str, Any] = {
        "filterGroups": groups,
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": list(spec.fields), "limit": SEARCH_PAGE}
    if after is not None:
        body["after"] = after
    return body


def max_groups(spec: StreamSpec) -> int:
    """How many filter groups a search of this stream may carry: each has up to three
    filters of the sweep's own (dates, keyset) and the stream's; HubSpot takes 5 groups and
    18 filters in all."""
    per_group = 3 + len(spec.options.get("filters") or ())
    return max(1, min(SEARCH_GROUPS, SEARCH_FILTERS // per_group))


def _check_complete(spec: StreamSpec, total: int, seen: int) -> None:
    """A segment that ends short of its total by a page or more lost results: stop."""
    if total - seen >= SEARCH_PAGE:
        raise FatalError(
            f"hubspot search on {spec.object} ended after {seen} of {total} "
            "results without a next page; stopping rather than skipping records",
            system="hubspot", stream=spec.name)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
