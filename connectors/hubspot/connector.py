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

import re
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
    WriteRef,
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
from connectors.hubspot.client import HubSpotClient
from connectors.retry import RetryPolicy
from syncagent.errors import ConfigError, FatalError, RetryableError, SyncAgentError

log = structlog.get_logger(__name__)

SEARCH_LIMIT = 200
SEARCH_CAP = 10_000
BATCH_MAX = 100
LIST_MEMBERSHIP_CHUNK = 1000
ASSOCIATION_SCAN_LIMIT = 100
ASSOCIATION_BATCH = 100            # v4 batch association read: inputs per call


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
        self._v4_associations: bool | None = None
        self.keyset_restarts = 0

    @classmethod
    def from_settings(cls, settings: Any, *, retry: RetryPolicy | None = None,
                      budget_history: Mapping[str, int] | None = None,
                      stream_table: Sequence[StreamSpec] = streams.STREAMS,
                      own_writes_seen: Mapping[str, Sequence[Sequence[int]]] | None = None
                      ) -> HubSpotConnector:
        """Build from ``syncagent.settings.Settings`` (its ``.hubspot`` and ``.ca_bundle``);
        ``own_writes_seen`` is ``status()["own_writes"]`` of the previous process."""
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
        for name, cursor in cursors.items():
            yield from self.read(name, cursor, cycle_start=cycle_start, progress=progress)

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
            links = self._contacts_of(spec.object, signals)
            for row, modstamp in fresh:
                out.extend(streams.engagement_activities(spec, row, links.get(str(row["id"]), []),
                                                         modstamp))
            return out
        for row, modstamp in fresh:
            out.append(streams.to_record(spec, row, modstamp))
            if spec.deletes:
                out.extend(streams.merges_of(spec, row, modstamp))
        return out

    def _contacts_of(self, object_type: str, ids: list[str]) -> dict[str, list[str]]:
        """Engagement id -> associated contact ids (search results carry no associations)."""
        if not ids:
            return {}
        if self._v4_associations is not False:
            try:
                found: dict[str, list[str]] = {}
                for i in range(0, len(ids), ASSOCIATION_BATCH):
                    data = self.client.associations(object_type, "contacts",
                                                    ids[i:i + ASSOCIATION_BATCH])
                    self._v4_associations = True
                    for r in data.get("results") or []:
                        found[str(r["from"]["id"])] = [str(t["toObjectId"])
                                                       for t in r.get("to") or []]
                return found
            except FatalError as exc:
                if exc.fields.get("status") not in (404, 405):
                    raise
                log.info("hubspot.associations_v4_unavailable", fallback="list scan")
                self._v4_associations = False
        return self._scan_associations(object_type, ids)

    def _scan_associations(self, object_type: str, ids: list[str]) -> dict[str, list[str]]:
        """Fallback: page the object list (sorted by id, with associations) over the id range."""
        wanted = set(ids)
        high = max(int(i) for i in ids)
        after: str | None = str(min(int(i) for i in ids))
        found: dict[str, list[str]] = {}
        while after is not None and int(after) <= high:
            data = self.client.list_page(object_type, after=after, limit=ASSOCIATION_SCAN_LIMIT,
                                         properties=("hs_object_id",), associations=("contacts",))
            for row in data.get("results") or []:
                if str(row["id"]) in wanted:
                    linked = ((row.get("associations") or {}).get("contacts") or {})
                    found[str(row["id"])] = [str(x["id"]) for x in linked.get("results") or []]
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
        return found

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
        results: list[WriteResult] = []
        for i in range(0, len(batch), BATCH_MAX):
            results.extend(self._write_chunk(object, operation, list(batch[i:i + BATCH_MAX])))
        return results

    def _write_chunk(self, obj: str, operation: WriteOperation,
                     chunk: list[WriteItem]) -> list[WriteResult]:
        id_property = streams.UPSERT_ID_PROPERTY.get(obj, "hs_object_id")
        inputs, keys = [], []
        for n, item in enumerate(chunk):
            if operation == "update":
                if not item.id:
                    raise ConfigError(f"hubspot update of {obj} without an id",
                                      hint="Updates need the record id.")
                inputs.append({"id": item.id, "properties": item.fields})
                keys.append(item.id)
            elif operation == "upsert":
                if not item.key:
                    raise ConfigError(f"hubspot upsert of {obj} needs the {id_property} value "
                                      "in WriteItem.key", hint="Give the key to match on.")
                # the id property is written too (same value) so the answer names it and
                # each result can be matched to its item
                props = {**item.fields, id_property: item.key} \
                    if id_property != "hs_object_id" else item.fields
                inputs.append({"id": item.key, "idProperty": id_property, "properties": props})
                keys.append(item.key)
            else:
                trace = item.key or f"item-{n}"
                inputs.append({"properties": item.fields, "objectWriteTraceId": trace})
                keys.append(trace)
        refs = [WriteRef(obj, item.id, item.key) for item in chunk]
        try:
            data = self.client.batch(obj, operation, inputs)
        except RetryableError as exc:
            return [_retryable(ref, exc) for ref in refs]
        except FatalError as exc:
            if exc.fields.get("status") != 400:
                raise
            # a whole-batch validation failure: every record gets HubSpot's reason
            return [WriteResult(ref=ref, status="rejected", code=str(exc.fields.get("code")
                                                                      or "VALIDATION_ERROR"),
                                message=exc.message) for ref in refs]
        return self._map_results(obj, operation, chunk, refs, keys, data, id_property)

    def _map_results(self, obj: str, operation: str, chunk: list[WriteItem],
                     refs: list[WriteRef], keys: list[str], data: Mapping[str, Any],
                     id_property: str) -> list[WriteResult]:
        """Per record, by ``errors[].context.ids`` — never by position."""
        failed: dict[str, dict[str, Any]] = {}
        for err in data.get("errors") or []:
            for key in (err.get("context") or {}).get("ids") or []:
                failed[str(key)] = err
        remote_ids: dict[str, str] = {}
        self.own_writes.note(obj, (row.get("updatedAt") for row in data.get("results") or []))
        made: dict[str, bool] = {}  # upserts say whether each record is new
        for row in data.get("results") or []:
            props = row.get("properties") or {}
            rid = str(row.get("id"))
            remote_ids[rid] = rid
            if isinstance(row.get("new"), bool):
                made[rid] = row["new"]
            if props.get(id_property):
                remote_ids[str(props[id_property])] = rid
            trace = row.get("objectWriteTraceId")
            if trace:
                remote_ids[str(trace)] = rid
        out = []
        for key, ref, item in zip(keys, refs, chunk, strict=True):
            err = failed.get(key)
            natural = item.fields.get(id_property)    # e.g. the email of a created contact
            existing = _existing_id(err) if err is not None and operation == "create" else None
            if existing is not None:
                # a retried create whose first attempt landed: the record is there, that is ok
                out.append(WriteResult(ref=ref, status="ok", id=existing, created=False))
            elif err is not None:
                status = int(err.get("status") or 400) if str(err.get("status", "")).isdigit() \
                    else 400
                retryable = status in (423, 429) or status >= 500
                out.append(WriteResult(ref=ref, status="retryable" if retryable else "rejected",
                                       code=str(err.get("category") or "ERROR"),
                                       message=str(err.get("message") or "")))
            else:
                found = remote_ids.get(key) or remote_ids.get(str(natural)) or item.id
                out.append(WriteResult(ref=ref, status="ok", id=found,
                                       created=made.get(found or "")))
        return out

    def fetch(self, object: str, record_ids: Sequence[str]) -> list[RemoteRecord]:
        """Records by id with their stream's properties (batch read: 100 a call, no search
        lag), e.g. contacts the agent just created, with what HubSpot filled in."""
        spec = next((s for s in self.streams.values() if s.object == object
                     and s.kind == "records" and s.options.get("mode") == "search"), None)
        if spec is None:
            return []
        out: list[RemoteRecord] = []
        for i in range(0, len(record_ids), BATCH_MAX):
            inputs = [{"id": rid} for rid in record_ids[i:i + BATCH_MAX]]
            data = self.client.batch(object, "read", inputs, properties=list(spec.fields))
            for row in data.get("results") or []:
                modstamp = streams.modstamp_of(spec, row) or datetime.now(UTC)
                out.append(streams.to_record(spec, row, modstamp))
        return out

    def change_list(self, list_id: str, *, add: Sequence[str] = (),
                    remove: Sequence[str] = ()) -> dict[str, list[str]]:
        """Add/remove contacts to/from a MANUAL or SNAPSHOT list (one call per 1,000 ids)."""
        merged: dict[str, list[str]] = {}
        add, remove = list(add), list(remove)
        while add or remove:
            chunk_add, add = add[:LIST_MEMBERSHIP_CHUNK], add[LIST_MEMBERSHIP_CHUNK:]
            room = LIST_MEMBERSHIP_CHUNK - len(chunk_add)
            chunk_remove, remove = remove[:room], remove[room:]
            data = self.client.change_list(list_id, chunk_add, chunk_remove)
            for name, values in (data or {}).items():
                if isinstance(values, list):
                    merged.setdefault(name, []).extend(str(v) for v in values)
        return merged

    # --- schema ----------------------------------------------------------------------------
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

    def status(self) -> dict[str, Any]:
        return {"calls": self.calls.by_operation(), "budget": self.budget.status(),
                # the rolling per-hour call count: pass back as from_settings(budget_history=)
                "hours": self.budget.state(),
                "keyset_restarts": self.keyset_restarts,
                # pass back as from_settings(own_writes_seen=)
                "own_writes": self.own_writes.state(),
                "events_api": self.events_available,
                "limiter_waited_seconds": round(self.client.limiter.waited
                                                + self.client.search_limiter.waited, 3)}

    @property
    def api_calls(self) -> int:
        """API calls made so far (logins excluded: they do not count against API limits)."""
        return self.calls.total - self.calls.by_operation().get("login", 0)

    def close(self) -> None:
        self.client.close()


_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


def _existing_id(err: Mapping[str, Any]) -> str | None:
    """The id HubSpot names in a create CONFLICT ("Contact already exists. Existing ID: 12")."""
    if str(err.get("category")) != "CONFLICT":
        return None
    match = _EXISTING_ID.search(str(err.get("message") or ""))
    return match.group(1) if match else None


def _retryable(ref: WriteRef, exc: SyncAgentError) -> WriteResult:
    return WriteResult(ref=ref, status="retryable",
                       code=str(exc.fields.get("code") or type(exc).__name__),
                       message=exc.message, retry_after=getattr(exc, "retry_after", None))


__all__ = ["HubSpotConnector", "errors"]
