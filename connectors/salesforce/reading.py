"""Salesforce reads: several streams in the fewest calls, plus lookups and reads by id.

The first page of up to five streams travels in ONE Composite call (each subrequest a
``queryAll`` from the stream's cursor, plus a free ``/deleted`` subrequest for streams that
have deletes), and the other streams get a cheap change check in that same call, so an
incremental cycle where little changed costs one API call. Further pages follow
``nextRecordsUrl``. The subrequests themselves are built and judged in composite.py.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from connectors.base import Cursor, Page, Progress, ProgressCallback, RemoteRecord, StreamSpec
from connectors.cursor import CursorWindow, fingerprint
from connectors.idset import IdSet
from connectors.salesforce import streams
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.composite import (
    Plan,
    already_read,
    deleted_rows,
    has_changes,
    invalid_field,
    ref,
    subrequest_body,
    subrequests,
)
from connectors.salesforce.limits import (
    COMPOSITE_MAX_QUERIES,
    COMPOSITE_MAX_SUBREQUESTS,
    DELETE_LOG_WINDOW,
    LOOKUP_CHUNK,
    MAX_GET_URL_BYTES,
    UPDATED_WINDOW,
)
from connectors.salesforce.schema_cache import SchemaCache
from syncagent.errors import ConfigError, FatalError

log = structlog.get_logger(__name__)

#: change checks that fit beside the queries: each is an /updated and a /deleted subrequest
MAX_CHECKS = (COMPOSITE_MAX_SUBREQUESTS - 2 * COMPOSITE_MAX_QUERIES) // 2


class StreamReader:
    """Reads a connector's streams (by name) with the fields the cached describe allows."""

    def __init__(self, client: SalesforceClient, schema: SchemaCache, *, lookback: timedelta,
                 streams_by_name: Mapping[str, StreamSpec]) -> None:
        self.client = client
        self.schema = schema
        self.lookback = lookback
        self.streams = streams_by_name

    def read_many(self, cursors: Mapping[str, Cursor | None], start: datetime,
                  progress: ProgressCallback | None) -> Iterator[Page]:
        """Each Composite call carries the first query page of up to five streams (hot streams
        first) and, for the others, a cheap change check (``/updated`` and ``/deleted``
        subrequests, not queries): a stream with no change yields one empty page with its
        cursor unchanged; one that changed is queried in the next Composite call. A quiet
        cycle of every stream therefore costs one API call."""
        pending = sorted(cursors, key=_priority)
        for name in pending:
            self.spec(name)
        while pending:
            plans = [self._plan(name, cursors[name], start) for name in pending]
            queried = plans[:COMPOSITE_MAX_QUERIES]
            checked = [p for p in plans[COMPOSITE_MAX_QUERIES:] if self._can_check(p, start)]
            checked = checked[:MAX_CHECKS]
            waiting = [p.spec.name for p in plans[COMPOSITE_MAX_QUERIES:] if p not in checked]
            changed = yield from self._read_group(queried, checked, start, progress)
            pending = sorted([*changed, *waiting], key=_priority)

    def spec(self, name: str) -> StreamSpec:
        try:
            return self.streams[name]
        except KeyError:
            raise ConfigError(f"unknown Salesforce stream '{name}'",
                              hint="Known: " + ", ".join(self.streams)) from None

    def readable(self, name: str) -> StreamSpec:
        """The stream with only the fields the org has and the user can read (as far as the
        cached describe knows)."""
        spec = self.spec(name)
        return replace(spec, fields=self.schema.selectable(spec.object, spec.fields))

    def _can_check(self, plan: Plan, start: datetime) -> bool:
        """A change check needs a cursor inside the /updated window (30 days)."""
        return (plan.cursor is not None and plan.cursor.modstamp is not None
                and not plan.reconcile
                and plan.cursor.modstamp > start - UPDATED_WINDOW + timedelta(hours=1))

    def _plan(self, name: str, cursor: Cursor | None, start: datetime) -> Plan:
        spec = self.readable(name)
        window = CursorWindow(cursor, lookback=self.lookback, cycle_start=start)
        lower = window.lower
        # Away longer than the delete log keeps: only a full id list shows hard deletes.
        reconcile = bool(spec.deletes and lower is not None
                         and lower < start - DELETE_LOG_WINDOW + timedelta(hours=1))
        return Plan(spec, cursor, window, reconcile)

    def _read_group(self, queried: list[Plan], checked: list[Plan], start: datetime,
                    progress: ProgressCallback | None) -> Generator[Page, None, list[str]]:
        """One Composite call; yields the queried streams' pages; returns the checked streams
        that changed (they are queried next)."""
        for plan in queried:
            if plan.reconcile:
                yield from self._reconcile(plan)
        answers = self._answers(queried, checked, start)
        for plan in queried:
            answer = answers.get(ref(plan.spec.name))
            if answer is None:
                raise FatalError(f"salesforce composite: no answer for {plan.spec.name}",
                                 system="salesforce")
            body = subrequest_body(answer, operation=f"query {plan.spec.name}")
            deleted = deleted_rows(plan, answers.get(ref(plan.spec.name, "deleted")))
            yield from self._pages(plan, body, deleted, start, progress)
        changed = []
        for plan in checked:
            if has_changes(answers.get(ref(plan.spec.name, "updated")),
                           answers.get(ref(plan.spec.name, "deleted")), plan.spec.deletes,
                           already_read(plan, start)):
                changed.append(plan.spec.name)
            else:
                # nothing changed since the cursor: the cursor stays (it is not advanced, so
                # late commits inside the lookback are still read when the stream next changes)
                yield Page(stream=plan.spec.name, object=plan.spec.object, records=[],
                           cursor=plan.cursor or Cursor(), done=True)
        return changed

    def _answers(self, queried: list[Plan], checked: list[Plan],
                 start: datetime) -> dict[Any, Any]:
        """The Composite answers by reference. A query refused with INVALID_FIELD (a field was
        deleted or its access revoked) refreshes the describe of its object and is sent again
        without the fields that are gone: the pull goes on, that field's feature is off."""
        for attempt in (1, 2):
            answers = {a.get("referenceId"): a for a in
                       self.client.composite(subrequests(self.client, queried, checked, start))}
            stale = [p for p in queried if invalid_field(answers.get(ref(p.spec.name)))]
            if not stale or attempt == 2:
                break
            log.info("salesforce.schema_refresh", streams=[p.spec.name for p in stale])
            self.schema.load({p.spec.object for p in stale}, refresh=True)
            for plan in stale:
                plan.spec = self.readable(plan.spec.name)
        return answers

    def _pages(self, plan: Plan, body: dict[str, Any], deleted: list[dict[str, Any]],
               start: datetime, progress: ProgressCallback | None) -> Iterator[Page]:
        spec, window = plan.spec, plan.window
        pages = emitted = 0
        total = body.get("totalSize")
        while True:
            rows = list(body.get("records", []))
            if deleted:
                seen = {r.get("Id") for r in rows}
                rows += [d for d in deleted if d["Id"] not in seen]
                deleted = []
            records = _convert(spec, window, rows, start)
            pages += 1
            emitted += len(records)
            done = bool(body.get("done", True))
            last_id = str(rows[-1]["Id"]) if rows else None
            page = Page(stream=spec.name, object=spec.object, records=records,
                        cursor=window.cursor(last_id=last_id, complete=done), done=done)
            if progress is not None:
                progress(Progress("salesforce", spec.name, emitted, pages, total))
            yield page
            if done:
                return
            body = self._more(plan, body["nextRecordsUrl"], page.cursor)

    def _more(self, plan: Plan, next_url: str, cursor: Cursor) -> dict[str, Any]:
        try:
            return self.client.query_more(next_url)
        except FatalError as exc:
            if exc.fields.get("code") != "INVALID_QUERY_LOCATOR":
                raise
        # The locator died (e.g. with an expired session): restart from the committed cursor;
        # the window's keys drop the rows already emitted.
        log.info("salesforce.query_restart", stream=plan.spec.name)
        soql = streams.incremental_soql(plan.spec, cursor.modstamp - self.lookback
                                        if cursor.modstamp else None)
        return self._query(soql, include_deleted=plan.spec.deletes)

    def _query(self, soql: str, *, include_deleted: bool = False) -> dict[str, Any]:
        """A query's first page: a GET when the URL is short, else inside a Composite body
        (the request line and headers must stay under 16,384 bytes). Either is one call."""
        if self.client.get_url_bytes(soql) <= MAX_GET_URL_BYTES:
            return self.client.query(soql, include_deleted=include_deleted)
        answer = self.client.composite([{
            "method": "GET", "referenceId": "query",
            "url": self.client.query_url(soql, include_deleted=include_deleted)}])
        return subrequest_body(answer[0], operation="query")

    def _rows(self, soql: str) -> Iterator[dict[str, Any]]:
        """Every row a query answers, following ``nextRecordsUrl`` page by page."""
        body = self._query(soql)
        while True:
            yield from body.get("records", [])
            if body.get("done", True):
                return
            body = self.client.query_more(body["nextRecordsUrl"])

    def _reconcile(self, plan: Plan) -> Iterator[Page]:
        """All live ids of the object (one query, paged); the pipeline deletes the rest."""
        spec = plan.spec
        log.info("salesforce.reconcile", stream=spec.name, reason="cursor older than 15 days")
        # compact (8 bytes an id, idset.py): every Lead of a big org is millions of ids
        ids = IdSet(str(r["Id"]) for r in self._rows(streams.ids_soql(spec.object)))
        yield Page(stream=spec.name, object=spec.object, records=[],
                   cursor=plan.cursor or Cursor(), done=False, reconcile_ids=ids)

    def lookup(self, obj: str, field: str, values: Sequence[Any]) -> dict[Any, list[str]]:
        """Ids of ``obj`` whose ``field`` is one of ``values`` (quoted by the library)."""
        found: dict[Any, list[str]] = {}
        unique = list(dict.fromkeys(values))
        for i in range(0, len(unique), LOOKUP_CHUNK):
            for row in self._rows(streams.lookup_soql(obj, field, unique[i:i + LOOKUP_CHUNK])):
                found.setdefault(row.get(field), []).append(str(row["Id"]))
        return found

    def fetch(self, object: str, record_ids: Sequence[str]) -> list[RemoteRecord]:
        """Records by id with the fields their stream reads: one query per 200 ids."""
        names = [s.name for s in self.streams.values()
                 if s.object == object and s.kind == "records"]
        if not names:
            return []
        spec = self.readable(names[0])
        out: list[RemoteRecord] = []
        for i in range(0, len(record_ids), LOOKUP_CHUNK):
            soql = streams.by_id_soql(spec, record_ids[i:i + LOOKUP_CHUNK])
            out += [streams.to_record(spec, row) for row in self._rows(soql)]
        return out


def _convert(spec: StreamSpec, window: CursorWindow, rows: list[dict[str, Any]],
             start: datetime) -> list[Any]:
    out: list[Any] = []
    for row in rows:
        modstamp = streams.parse_datetime(row.get(streams.MODSTAMP)) or start
        content = {k: v for k, v in row.items() if k != "attributes"}
        if not window.admit(str(row["Id"]), modstamp, fingerprint(content)):
            continue
        if spec.kind == "activities":
            out.extend(streams.to_activities(spec, row, start))
        else:
            out.append(streams.to_record(spec, row))
    return out


def _priority(name: str) -> int:
    """Hot streams get the Composite's query slots first."""
    order = streams.HOT_ORDER
    return order.index(name) if name in order else len(order)
