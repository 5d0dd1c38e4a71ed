"""HubSpotConnector: the Connector protocol over :class:`HubSpotClient`.

Incremental search is a *sweep*: every record whose modified date lies in
``[cursor - lookback, cycle start]``, sorted by ``hs_object_id`` ascending and paged with
``paging.next.after``. Before the next page would cross HubSpot's 10,000-result cap, the sweep
restarts with ``hs_object_id > last id seen`` (HubSpot compares ids numerically), so any number
of records — even 10,500 sharing one timestamp — is read without truncation. The upper bound
keeps the sweep stable: a record modified during the sweep moves past it and is read by the
next one. Mid-sweep cursors remember the sweep (bounds, last id) so a stop resumes exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from connectors.base import (
    ActivityRecord,
    ApiCallCounter,
    Cursor,
    FieldSchema,
    ObjectSchema,
    Page,
    Progress,
    ProgressCallback,
    RemoteRecord,
    StreamSpec,
    WriteItem,
    WriteOperation,
    WriteResult,
)
from connectors.budget import DailyBudget
from connectors.cursor import (
    CursorWindow,
    fingerprint,
    from_epoch_ms,
    max_numeric_id,
    record_key,
    to_epoch_ms,
)
from connectors.hubspot import errors, own_writes, streams
from connectors.hubspot.associations import Associations
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.lists import ListMemberships
from connectors.hubspot.schema import PortalSchema, preflight_error
from connectors.hubspot.writes import BatchWriter
from connectors.retry import RetryPolicy
from syncagent.errors import ConfigError, FatalError

log = structlog.get_logger(__name__)

SEARCH_LIMIT = 200
SEARCH_CAP = 10_000
BATCH_READ_MAX = 100


class HubSpotConnector:
    """Reads streams, writes batches, changes list memberships; counts calls in ``calls``."""

    system = "hubspot"

    def __init__(self, client: HubSpotClient, *, lookback: timedelta,
                 stream_table: Sequence[StreamSpec] = streams.STREAMS,
                 own_writes_seen: Mapping[str, Sequence[Sequence[int]]] | None = None) -> None:
        self.client = client
        # when (remote clock, epoch ms) our own batch writes landed: not re-read (own_writes.py)
        self.own_writes = own_writes.OwnWrites(own_writes_seen or {})
        self.lookback = lookback
        self.streams: dict[str, StreamSpec] = {s.name: s for s in stream_table}
        self.calls: ApiCallCounter = client.calls
        self.budget: DailyBudget = client.budget
        self.events_available: bool | None = None   # learnt on the first events read
        self.associations = Associations(client)
        self.keyset_restarts = 0
        self.writer = BatchWriter(client, on_written=self.own_writes.note)
        self.lists = ListMemberships(client)
        self.features_off: dict[str, str] = {}    # stream -> why (e.g. a missing scope)
        self._schema = PortalSchema(client)

    @classmethod
    def from_settings(cls, settings: Any, *, retry: RetryPolicy | None = None,
                      budget_history: Mapping[str, int] | None = None,
                      stream_table: Sequence[StreamSpec] = streams.STREAMS,
                      mapped_fields: Sequence[str] = (),
                      own_writes_seen: Mapping[str, Sequence[Sequence[int]]] | None = None
                      ) -> HubSpotConnector:
        """Build from ``syncagent.settings.Settings`` (its ``.hubspot`` and ``.ca_bundle``);
        ``mapped_fields`` (HubSpot names from fields.yaml) are read by the contacts stream;
        ``own_writes_seen`` is ``status()["own_writes"]`` of the previous process."""
        stream_table = streams.with_mapped_fields(tuple(stream_table), mapped_fields)
        hs = settings.hubspot
        budget = DailyBudget("hubspot", hs.daily_budget_share, history=budget_history)
        ca: Path | None = settings.ca_bundle
        client = HubSpotClient(hs, ca_bundle=ca, retry=retry, budget=budget)
        return cls(client, lookback=timedelta(seconds=hs.lookback_seconds),
                   stream_table=stream_table, own_writes_seen=own_writes_seen)

    # --- reads -----------------------------------------------------------------------------
    def read_many(self, cursors: Mapping[str, Cursor | None], *,
                  cycle_start: datetime | None = None,
                  progress: ProgressCallback | None = None) -> Iterator[Page]:
        """Every stream in turn. A stream the token has no scope for is switched off (its
        reason kept in ``features_off``) and the others still run: a 403 on owners must not
        stop the engagement streams."""
        self.features_off = {}
        for name, cursor in cursors.items():
            try:
                yield from self.read(name, cursor, cycle_start=cycle_start, progress=progress)
            except errors.MissingScopes as exc:
                self.features_off[name] = exc.message
                log.warning("hubspot.stream_off", stream=name, **exc.as_dict())

    def read(self, stream: str, cursor: Cursor | None, *, cycle_start: datetime | None = None,
             progress: ProgressCallback | None = None) -> Iterator[Page]:
        spec = self.streams.get(stream)
        if spec is None:
            raise ConfigError(f"unknown HubSpot stream '{stream}'",
                              hint="Known: " + ", ".join(self.streams))
        start = (cycle_start or datetime.now(UTC)).astimezone(UTC)
        mode = spec.options.get("mode")
        if mode == "search":
            return self._sweep(spec, cursor, start, progress)
        if mode == "archived":
            return self._archived(spec, cursor, start, progress)
        if mode == "owners":
            return self._owners(spec, cursor, start, progress)
        return self._events(spec, cursor, start, progress)

    def _sweep(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
               progress: ProgressCallback | None, *, analytics: bool = False) -> Iterator[Page]:
        """The incremental search sweep (see the module docstring)."""
        state = dict(cursor.sweep) if cursor is not None and cursor.sweep else None
        last_id: str | None = None
        if state is None:
            window = CursorWindow(cursor, lookback=self.lookback, cycle_start=start)
            lower = window.lower
            state = {"lower": to_epoch_ms(lower) if lower else None,
                     "upper": to_epoch_ms(start), "high": None}
            if lower is not None and cursor is not None and cursor.modstamp is not None:
                # the re-read window minus the moments our own writes landed in it
                state["skip"] = self.own_writes.inside(spec.object, to_epoch_ms(lower),
                                                       to_epoch_ms(cursor.modstamp))
        else:
            # Resuming a stopped sweep: its bounds are fixed. It ends at ITS upper bound, not at
            # today's cycle start, or records changed in between would be skipped.
            window = CursorWindow(cursor, lookback=self.lookback,
                                  cycle_start=from_epoch_ms(state["upper"]))
            last_id = cursor.last_id if cursor else None
            if state.get("high") is not None:
                window.high = max(filter(None, [window.high, from_epoch_ms(state["high"])]))
        hold = cursor.modstamp if cursor else None
        key_floor = from_epoch_ms(state["lower"]) if state.get("lower") else None
        after: str | None = None
        segment_from = last_id          # the keyset filter of the current segment
        pages = emitted = segment_seen = 0
        while True:
            data = self.client.search(spec.object,
                                      self._search_body(spec, state, segment_from, after))
            rows = list(data.get("results") or [])
            segment_seen += len(rows)
            records = self._convert_search(spec, window, rows, analytics)
            for row in rows:
                last_id = max_numeric_id(last_id, str(row["id"]))
            next_after = ((data.get("paging") or {}).get("next") or {}).get("after")
            pages += 1
            emitted += len(records)
            if next_after is None:
                total = int(data.get("total") or 0)
                if total - segment_seen >= SEARCH_LIMIT:
                    raise FatalError(
                        f"hubspot search on {spec.object} ended after {segment_seen} of {total} "
                        "results without a next page; stopping rather than skipping records",
                        system="hubspot", stream=spec.name)
                page = Page(stream=spec.name, object=spec.object, records=records,
                            cursor=window.cursor(complete=True), done=True)
            else:
                if int(next_after) + SEARCH_LIMIT > SEARCH_CAP:
                    # the next page would pass the 10,000 cap: restart the keyset after last_id
                    self.keyset_restarts += 1
                    after, segment_seen, segment_from = None, 0, last_id
                else:
                    after = str(next_after)
                state["high"] = to_epoch_ms(window.high) if window.high else None
                floor = key_floor or ((window.high - self.lookback) if window.high else None)
                page = Page(stream=spec.name, object=spec.object, records=records,
                            cursor=window.cursor(last_id=last_id, sweep=dict(state), hold=hold,
                                                 key_floor=floor))
            if progress is not None:
                progress(Progress("hubspot", spec.name, emitted, pages,
                                  int(data.get("total") or 0) or None))
            yield page
            if page.done:
                return

    def _search_body(self, spec: StreamSpec, state: Mapping[str, Any], last_id: str | None,
                     after: str | None) -> dict[str, Any]:
        groups = []
        for lower, upper in own_writes.ranges(state.get("lower"), state["upper"],
                                              state.get("skip") or ()):
            filters: list[dict[str, Any]] = [
                {"propertyName": spec.cursor_field, "operator": "LTE", "value": str(upper)}]
            if lower is not None:
                filters.append({"propertyName": spec.cursor_field, "operator": "GTE",
                                "value": str(lower)})
            if last_id is not None:
                filters.append({"propertyName": "hs_object_id", "operator": "GT",
                                "value": last_id})
            groups.append({"filters": filters})
        body: dict[str, Any] = {
            "filterGroups": groups,
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": list(spec.fields), "limit": SEARCH_LIMIT}
        if after is not None:
            body["after"] = after
        return body

    def _convert_search(self, spec: StreamSpec, window: CursorWindow,
                        rows: list[dict[str, Any]], analytics: bool
                        ) -> list[RemoteRecord | ActivityRecord]:
        fresh: list[tuple[dict[str, Any], datetime]] = []
        for row in rows:
            modstamp = streams.modstamp_of(spec, row) or window.cycle_start
            if window.admit(str(row["id"]), modstamp, fingerprint(row.get("properties") or {})):
                fresh.append((row, modstamp))
        out: list[RemoteRecord | ActivityRecord] = []
        if analytics:
            for row, modstamp in fresh:
                out.extend(streams.analytics_activities(row, modstamp))
            return out
        if spec.kind == "activities":
            # only engagements that are scoring signals need their contacts looked up
            signals = [str(r["id"]) for r, _ in fresh
                       if streams.engagement_kind(spec.object, r.get("properties") or {})]
            links = self.associations.contacts_of(spec.object, signals)
            for row, modstamp in fresh:
                out.extend(streams.engagement_activities(spec, row, links.get(str(row["id"]), []),
                                                         modstamp))
            return out
        for row, modstamp in fresh:
            out.append(streams.to_record(spec, row, modstamp))
            if spec.deletes:
                out.extend(streams.merges_of(spec, row, modstamp))
            if spec.object == "contacts":
                out.extend(streams.email_activities(row))
        return out

    def _archived(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
                  progress: ProgressCallback | None) -> Iterator[Page]:
        """Archived contacts -> deletions (the list API has no date filter: read it all, emit
        those archived inside the window that were not emitted before)."""
        window = CursorWindow(cursor, lookback=self.lookback, cycle_start=start)
        lower = window.lower
        after: str | None = None
        pages = emitted = 0
        while True:
            data = self.client.list_page(spec.object, after=after, limit=100, archived=True,
                                         properties=spec.fields)
            records: list[RemoteRecord | ActivityRecord] = []
            for row in data.get("results") or []:
                when = streams.parse_time(row.get("archivedAt") or row.get("updatedAt"))
                if when is None or (lower is not None and when < lower):
                    continue
                if window.admit(str(row["id"]), when):
                    records.append(RemoteRecord(system="hubspot", object=spec.object,
                                                id=str(row["id"]), fields=row.get("properties")
                                                or {}, modstamp=when, deleted=True))
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            pages += 1
            emitted += len(records)
            if progress is not None:
                progress(Progress("hubspot", spec.name, emitted, pages, None))
            done = after is None
            # the list is in id order, not time order: the cursor moves only at the end
            page_cursor = window.cursor(complete=True) if done else window.cursor(
                hold=cursor.modstamp if cursor else None, key_floor=lower)
            yield Page(stream=spec.name, object=spec.object, records=records,
                       cursor=page_cursor if done else (cursor or Cursor()), done=done)
            if done:
                return

    def _owners(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
                progress: ProgressCallback | None) -> Iterator[Page]:
        """Owners: a short list without a date filter, read whole; only owners that are new or
        changed since the last read are emitted (the cursor keeps every owner's version key)."""
        known = cursor.boundary_ids if cursor else frozenset()
        seen: set[str] = set()
        after: str | None = None
        high = cursor.modstamp if cursor else None
        pages = emitted = 0
        while True:
            data = self.client.owners_page(after)
            records: list[RemoteRecord | ActivityRecord] = []
            for row in data.get("results") or []:
                when = streams.parse_time(row.get("updatedAt")) or start
                high = max(filter(None, [high, min(when, start)]))
                key = record_key(str(row["id"]), when, fingerprint(row))
                seen.add(key)
                if key not in known:
                    records.append(RemoteRecord(system="hubspot", object="owners",
                                                id=str(row["id"]), fields=dict(row),
                                                modstamp=when,
                                                deleted=bool(row.get("archived"))))
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            pages += 1
            emitted += len(records)
            if progress is not None:
                progress(Progress("hubspot", spec.name, emitted, pages, None))
            done = after is None
            # mid-list pages keep the old keys, so a stop re-emits rather than skips
            keys = frozenset(seen) if done else frozenset(known | seen)
            yield Page(stream=spec.name, object="owners", records=records,
                       cursor=Cursor(modstamp=high, boundary_ids=keys), done=done)
            if done:
                return

    def _events(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
                progress: ProgressCallback | None) -> Iterator[Page]:
        """Web events; when the portal has no events API (403/404), contact analytics."""
        if self.events_available is False:
            yield from self._analytics(spec, cursor, start, progress)
            return
        window = CursorWindow(cursor, lookback=self.lookback, cycle_start=start)
        after: str | None = None
        pages = emitted = 0
        while True:
            try:
                data = self.client.events_page(occurred_after=window.lower, after=after)
            except FatalError as exc:
                if pages == 0 and exc.fields.get("status") in (403, 404):
                    log.warning("hubspot.events_unavailable", status=exc.fields.get("status"),
                                fallback="contact analytics properties")
                    self.events_available = False
                    yield from self._analytics(spec, cursor, start, progress)
                    return
                raise
            self.events_available = True
            records: list[RemoteRecord | ActivityRecord] = []
            for event in data.get("results") or []:
                when = streams.parse_time(event.get("occurredAt"))
                if when is None or not window.admit(str(event.get("id")), when):
                    continue
                activity = streams.event_activity(event)
                if activity is not None:
                    records.append(activity)
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            pages += 1
            emitted += len(records)
            if progress is not None:
                progress(Progress("hubspot", spec.name, emitted, pages, None))
            yield Page(stream=spec.name, object="events", records=records,
                       cursor=window.cursor(complete=after is None), done=after is None)
            if after is None:
                return

    def _analytics(self, spec: StreamSpec, cursor: Cursor | None, start: datetime,
                   progress: ProgressCallback | None) -> Iterator[Page]:
        contacts = self.streams.get("contacts")
        base = contacts or streams.STREAMS[0]
        analytics = StreamSpec(name=spec.name, system="hubspot", object="contacts",
                               fields=streams.ANALYTICS_PROPERTIES,
                               cursor_field=base.cursor_field, kind="activities",
                               options={"mode": "search"})
        yield from self._sweep(analytics, cursor, start, progress, analytics=True)

    # --- writes ----------------------------------------------------------------------------
    def write(self, object: str, operation: WriteOperation,
              batch: Sequence[WriteItem]) -> list[WriteResult]:
        """Batch writes with bad inputs isolated (connectors/hubspot/writes.py)."""
        results = self.writer.write(object, operation, batch)
        self._schema.after_refusals(results)
        return results

    def fetch(self, object: str, record_ids: Sequence[str]) -> list[RemoteRecord]:
        """Records by id with their stream's properties (batch read: 100 a call, no search
        lag), e.g. contacts the agent just created, with what HubSpot filled in."""
        spec = next((s for s in self.streams.values() if s.object == object
                     and s.kind == "records" and s.options.get("mode") == "search"), None)
        if spec is None:
            return []
        out: list[RemoteRecord] = []
        for i in range(0, len(record_ids), BATCH_READ_MAX):
            inputs = [{"id": rid} for rid in record_ids[i:i + BATCH_READ_MAX]]
            data = self.client.batch(object, "read", inputs, properties=list(spec.fields))
            for row in data.get("results") or []:
                modstamp = streams.modstamp_of(spec, row) or datetime.now(UTC)
                out.append(streams.to_record(spec, row, modstamp))
        return out

    def change_list(self, list_name: str, *, add: Sequence[str] = (),
                    remove: Sequence[str] = ()) -> dict[str, list[str]]:
        """Add/remove contacts to/from the MANUAL or SNAPSHOT list of that name."""
        return self.lists.change(list_name, add=add, remove=remove)

    # --- schema ----------------------------------------------------------------------------
    def preflight(self) -> None:
        """Before a cycle that writes: the portal must have the agent's properties (one
        properties read, then cached)."""
        missing = self._schema.missing_required()
        if missing:
            raise preflight_error(missing)

    def contact_properties(self) -> frozenset[str] | None:
        """The portal's contact property names (cached; None when they cannot be read)."""
        return self._schema.contact_properties()

    def schema_facts(self) -> dict[str, Any] | None:
        """Property facts read since the last call, for the next process (None: nothing new)."""
        return self._schema.facts()

    def adopt_schema_facts(self, facts: Mapping[str, Any]) -> None:
        self._schema.adopt(facts)   # an earlier process's: read again only once stale

    def describe(self, object: str) -> ObjectSchema:
        data = self.client.properties(object)
        fields = {}
        for p in data.get("results") or []:
            meta = p.get("modificationMetadata") or {}
            fields[p["name"]] = FieldSchema(
                name=p["name"], label=p.get("label", p["name"]), type=p.get("type", "string"),
                updateable=not meta.get("readOnlyValue", False),
                options=tuple(str(o.get("value")) for o in p.get("options") or []))
        return ObjectSchema(system="hubspot", object=object, fields=fields)

    def owners(self) -> list[RemoteRecord]:
        """All owners (id, email, userId, teams): to match Salesforce users by email."""
        return [r for page in self._owners(self.streams.get("owners") or streams.STREAMS[2],
                                           None, datetime.now(UTC), None)
                for r in page.records if isinstance(r, RemoteRecord)]

    def watch(self, stop: threading.Event) -> None:
        """Retry and rate-limit waits end as soon as ``stop`` is set (one event per cycle)."""
        self.client.retry.stop = stop
        self.client.limiter.stop = stop
        self.client.search_limiter.stop = stop

    def status(self) -> dict[str, Any]:
        return {"calls": self.calls.by_operation(), "budget": self.budget.status(),
                # the rolling per-hour call count: pass back as from_settings(budget_history=)
                "hours": self.budget.state(),
                "keyset_restarts": self.keyset_restarts,
                # pass back as from_settings(own_writes_seen=)
                "own_writes": self.own_writes.state(),
                "features_off": dict(self.features_off),
                "isolated_inputs": self.writer.isolated,
                "events_api": self.events_available,
                "limiter_waited_seconds": round(self.client.limiter.waited
                                                + self.client.search_limiter.waited, 3)}

    @property
    def api_calls(self) -> int:
        """API calls made so far (logins excluded: they do not count against API limits)."""
        return self.calls.total - self.calls.by_operation().get("login", 0)

    def close(self) -> None:
        self.client.close()


__all__ = ["HubSpotConnector", "errors"]
