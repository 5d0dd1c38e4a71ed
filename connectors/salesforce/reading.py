"""Salesforce reads: several streams in the fewest calls, plus lookups and reads by id.

Each Composite call (ONE API call) carries the next page of up to five streams: a first page
(a ``queryAll`` from the stream's cursor, plus a free ``/deleted`` subrequest for streams that
have deletes) or a ``nextRecordsUrl`` GET; streams waiting for a slot get a cheap change check
in that same call, so an incremental cycle where little changed costs one API call and a
backfill max(ceil(pages / 5), the longest stream). Look-ups and reads by id go five queries a
call. The subrequests themselves are built and judged in composite.py.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from connectors.base import Cursor, Page, Progress, ProgressCallback, RemoteRecord, StreamSpec
from connectors.cursor import CursorWindow, fingerprint
from connectors.idset import IdSet
from connectors.salesforce import streams, wide
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.composite import (
    Plan,
    already_read,
    deleted_rows,
    has_changes,
    invalid_field,
    more_subrequest,
    ref,
    subrequest_body,
    subrequests,
)
from connectors.salesforce.limits import (
    COMPOSITE_MAX_QUERIES,
    COMPOSITE_MAX_SUBREQUESTS,
    DELETE_LOG_WINDOW,
    UPDATED_WINDOW,
)
from connectors.salesforce.schema_cache import SchemaCache
from syncagent.errors import ConfigError, FatalError, RetryableError, ServerError

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
        """Rounds of one Composite call each: the next page (the first query, or the
        ``nextRecordsUrl`` GET) of up to five streams, and for streams waiting for a query
        slot a cheap change check (``/updated`` and ``/deleted`` subrequests, not queries): a
        stream with no change yields one empty page with its cursor unchanged; one that
        changed is queried in a later round. A quiet cycle of every stream therefore costs one
        API call, and a backfill about max(ceil(pages / 5), the longest stream's pages).
        Each stream keeps its own page order, cursor and error handling."""
        names = sorted(cursors, key=_priority)
        for name in names:
            self.spec(name)
        fresh = [_Paging(self._plan(name, cursors[name], start)) for name in names]
        paging: list[_Paging] = []
        checked: set[str] = set()
        while fresh or paging:
            sent = _slots(fresh, paging)
            checks = [s for s in fresh if s not in sent and s.plan.spec.name not in checked
                      and self._can_check(s.plan, start)][:MAX_CHECKS]
            checked.update(s.plan.spec.name for s in checks)
            fresh = [s for s in fresh if s not in sent and s not in checks]
            paging = [s for s in paging if s not in sent]
            later = yield from self._round(sent, checks, start, progress)
            fresh = sorted(fresh + [s for s in later if s.next_url is None],
                           key=lambda s: _priority(s.plan.spec.name))
            paging += [s for s in later if s.next_url is not None]

    def _round(self, sent: list[_Paging], checks: list[_Paging], start: datetime,
               progress: ProgressCallback | None) -> Generator[Page, None, list[_Paging]]:
        """One Composite call; yields the pages it brought; returns the streams with a page
        still to read (a next page, a page to ask again, or a changed stream's query)."""
        firsts = [s.plan for s in sent if s.next_url is None]
        for stream in sent:
            if stream.next_url is None and stream.plan.reconcile and not stream.reconciled:
                yield from self._reconcile(stream.plan)
                stream.reconciled = True    # once, even when its first query goes again
        self._wait_if_only_retries(sent)
        subs = subrequests(self.client, firsts, [s.plan for s in checks], start)
        subs += [more_subrequest(s.plan, s.next_url) for s in sent if s.next_url is not None]
        answers = {a.get("referenceId"): a for a in self.client.composite(subs)}
        later: list[_Paging] = []
        for stream in sent:
            page = self._answered(stream, answers, start)
            if page is not None:
                stream.note(page, progress)
                yield page
            if not stream.done:
                later.append(stream)
        if any(s.expired for s in sent):
            # a part refused for an expired session: the one re-login a plain call gets
            # (client._attempt); refused so again, the stream's query fails as its own would
            self.client.relogin()
            for stream in sent:
                stream.expired = False
        for stream in checks:
            plan = stream.plan
            if has_changes(answers.get(ref(plan.spec.name, "updated")),
                           answers.get(ref(plan.spec.name, "deleted")), plan.spec.deletes,
                           already_read(plan, start)):
                later.append(stream)
            else:
                # nothing changed since the cursor: the cursor stays (it is not advanced, so
                # late commits inside the lookback are still read when the stream next changes)
                yield Page(stream=plan.spec.name, object=plan.spec.object, records=[],
                           cursor=plan.cursor or Cursor(), done=True)
        return later

    def _answered(self, stream: _Paging, answers: Mapping[Any, Any],
                  start: datetime) -> Page | None:
        """The page a stream's subrequest brought, or None when it is to be asked again: a
        query refused with INVALID_FIELD (a field was deleted or its access revoked) once,
        after the describe of its object is read again, without the fields that are gone;
        a passing refusal (lock, 5xx, too many requests) up to the retry policy's attempts; an
        expired session once, after a re-login; a dead query locator as a query again from
        the last page's cursor. Any other refusal raises, as the stream's own query would."""
        plan, first = stream.plan, stream.next_url is None
        answer = answers.get(ref(plan.spec.name) if first else ref(plan.spec.name, "more"))
        if first and invalid_field(answer) and not stream.refreshed:
            log.info("salesforce.schema_refresh", streams=[plan.spec.name])
            self.schema.load({plan.spec.object}, refresh=True)
            plan.spec = self.readable(plan.spec.name)
            stream.refreshed = True
            return None
        try:
            if answer is None:
                raise ServerError(f"salesforce composite: no answer for {plan.spec.name}",
                                  system="salesforce")
            body = subrequest_body(answer, operation=f"query {plan.spec.name}")
        except RetryableError as exc:
            stream.refused(exc, self.client.retry.attempts)
            return None
        except FatalError as exc:
            if exc.fields.get("code") == "INVALID_SESSION_ID" and not stream.relogged:
                stream.relogged = stream.expired = True   # the round logs in again once
                return None
            if first or exc.fields.get("code") != "INVALID_QUERY_LOCATOR":
                raise
            # The locator died (e.g. with an expired session): query again from the last
            # committed cursor; the window's keys drop the rows already emitted.
            log.info("salesforce.query_restart", stream=plan.spec.name)
            stream.next_url = self.client.query_url(
                streams.incremental_soql(plan.query_spec(), stream.restart_from(self.lookback)),
                include_deleted=plan.spec.deletes)
            return None
        deleted = deleted_rows(plan, answers.get(ref(plan.spec.name, "deleted"))) if first \
            else []
        if plan.overflow:
            body = {**body, "records": self._completed(plan, list(body.get("records", [])))}
        return stream.page(body, deleted, start)

    def _completed(self, plan: Plan, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A page of a stream too wide for one URL, with the fields its query left out
        read by Id (wide.py)."""
        ids = [str(row["Id"]) for row in rows]
        if not ids:
            return rows
        soqls = wide.by_id_soqls(self.client, plan.spec.object, ("Id", *plan.overflow), ids)
        return wide.completed(rows, self._rows_packed(soqls))

    def _wait_if_only_retries(self, sent: list[_Paging]) -> None:
        """A round that only asks refused pages again waits as the retry policy would, so a
        429 or a lock is not hammered (other streams' pages give that time otherwise)."""
        if sent and all(s.failures for s in sent):
            policy = self.client.retry
            worst = max(s.failures for s in sent)
            after = max((s.retry_after or 0.0) for s in sent)
            policy.pause(min(max(after, policy.base_seconds * 2 ** (worst - 1)),
                             policy.max_retry_after_seconds))

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
        plan = Plan(spec, cursor, window, reconcile)
        mark = cursor.modstamp if cursor is not None else None

        def build(fields: Sequence[str]) -> str:   # the longest form the query takes
            return streams.incremental_soql(replace(spec, fields=tuple(fields)), lower,
                                            read_before=mark, writer=self.client.settings.username)

        groups = wide.field_groups(self.client, spec.fields, build)
        if len(groups) > 1:
            plan.query_fields = groups[0]
            plan.overflow = tuple(f for group in groups[1:] for f in group if f != "Id")
        return plan

    def _query(self, soql: str, *, include_deleted: bool = False) -> dict[str, Any]:
        """A query's first page, a GET (queries are built to fit a URL: wide.py)."""
        return self.client.query(soql, include_deleted=include_deleted)

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
        soqls = wide.value_chunks(self.client, lambda chunk: streams.lookup_soql(
            obj, field, chunk), unique)
        for row in self._rows_packed(soqls):
            found.setdefault(row.get(field), []).append(str(row["Id"]))
        return found

    def fetch(self, object: str, record_ids: Sequence[str]) -> list[RemoteRecord]:
        """Records by id with the fields their stream reads: one query per 200 ids, five
        queries to a call."""
        names = [s.name for s in self.streams.values()
                 if s.object == object and s.kind == "records"]
        if not names:
            return []
        spec = self.readable(names[0])
        soqls = wide.by_id_soqls(self.client, spec.object, spec.fields, record_ids)
        return [streams.to_record(spec, row) for row in wide.merged(self._rows_packed(soqls))]

    def _rows_packed(self, soqls: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Every row of several queries: their first pages five to a Composite call (one
        query alone goes as _rows sends it), further pages by ``nextRecordsUrl``. A query
        refused for a passing reason inside the call is sent again on its own, under the
        retry policy."""
        if len(soqls) == 1:
            yield from self._rows(soqls[0])
            return
        for start in range(0, len(soqls), COMPOSITE_MAX_QUERIES):
            group = soqls[start:start + COMPOSITE_MAX_QUERIES]
            answers = {a.get("referenceId"): a for a in self.client.composite(
                [{"method": "GET", "referenceId": f"rows{n}", "url": self.client.query_url(soql)}
                 for n, soql in enumerate(group)])}
            for n, soql in enumerate(group):
                try:
                    body = subrequest_body(answers.get(f"rows{n}") or {}, operation="query")
                except RetryableError:
                    yield from self._rows(soql)
                    continue
                yield from body.get("records", [])
                while not body.get("done", True):
                    body = self.client.query_more(body["nextRecordsUrl"])
                    yield from body.get("records", [])


class _Paging:
    """One stream's read across rounds: its plan, the URL of its next page (None: its first
    query is next), and how far it got."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.next_url: str | None = None
        self.done = False
        self.cursor: Cursor | None = None       # the last page's
        self.pages = self.emitted = self.rows = self.failures = 0
        self.page_rows = 0                      # rows a full page of this query holds
        self.total: int | None = None
        self.refreshed = self.reconciled = self.relogged = self.expired = False
        self.retry_after: float | None = None

    def remaining(self) -> float:
        """Pages still to read, as far as the query's totalSize tells (unknown: infinite, so
        a stream not started yet gets a slot at once)."""
        if self.next_url is None or not self.total or not self.page_rows:
            return math.inf
        return math.ceil(max(self.total - self.rows, 1) / self.page_rows)

    def page(self, body: Mapping[str, Any], deleted: list[dict[str, Any]],
             start: datetime) -> Page:
        spec, window = self.plan.spec, self.plan.window
        rows = list(body.get("records", []))
        self.rows += len(rows)
        self.page_rows = max(self.page_rows, len(rows))
        self.total = body.get("totalSize", self.total)
        if deleted:
            seen = {r.get("Id") for r in rows}
            rows += [d for d in deleted if d["Id"] not in seen]
        records = _convert(spec, window, rows, start)
        self.done = bool(body.get("done", True))
        self.next_url = None if self.done else str(body["nextRecordsUrl"])
        last_id = str(rows[-1]["Id"]) if rows else None
        self.cursor = window.cursor(last_id=last_id, complete=self.done)
        self.failures, self.retry_after = 0, None
        return Page(stream=spec.name, object=spec.object, records=records,
                    cursor=self.cursor, done=self.done)

    def note(self, page: Page, progress: ProgressCallback | None) -> None:
        self.pages += 1
        self.emitted += len(page.records)
        if progress is not None:
            progress(Progress("salesforce", self.plan.spec.name, self.emitted, self.pages,
                              self.total))

    def refused(self, error: RetryableError, attempts: int) -> None:
        """A passing refusal: ask again next round, at most ``attempts`` times in a row."""
        self.failures += 1
        if self.failures >= attempts:
            raise error
        self.retry_after = error.retry_after

    def restart_from(self, lookback: timedelta) -> datetime | None:
        modstamp = self.cursor.modstamp if self.cursor is not None else None
        return modstamp - lookback if modstamp is not None else None


def _slots(fresh: list[_Paging], paging: list[_Paging]) -> list[_Paging]:
    """The streams whose next page goes in this round's query slots: streams not started yet
    first (their size is unknown), then those with the most pages left, so the longest
    stream is never kept waiting and the call fills all five slots while pages remain."""
    ranked = sorted([*fresh, *paging],
                    key=lambda s: (-s.remaining(), _priority(s.plan.spec.name)))
    return ranked[:COMPOSITE_MAX_QUERIES]


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
