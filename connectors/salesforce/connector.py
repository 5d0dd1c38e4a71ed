"""SalesforceConnector: the Connector protocol over :class:`SalesforceClient`.

Reads: the first page of up to five streams travels in ONE Composite call (each subrequest a
``queryAll`` from the stream's cursor, plus a free ``/deleted`` subrequest for streams that have
deletes), so an incremental cycle where little changed costs one API call per five streams;
further pages follow ``nextRecordsUrl``. Writes: sObject Collections, 200 per call.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from connectors.base import (
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
from connectors.cursor import CursorWindow, fingerprint
from connectors.retry import RetryPolicy
from connectors.salesforce import errors, isolate, streams
from connectors.salesforce.client import MAX_GET_URL_BYTES, SalesforceClient
from syncagent.errors import ConfigError, FatalError, RetryableError, SyncAgentError

log = structlog.get_logger(__name__)

COMPOSITE_MAX_QUERIES = 5          # Composite: at most 5 query/collection subrequests
COMPOSITE_MAX_SUBREQUESTS = 25
MAX_CHECKS = (COMPOSITE_MAX_SUBREQUESTS - 2 * COMPOSITE_MAX_QUERIES) // 2   # updated + deleted
UPDATED_WINDOW = timedelta(days=30)
COLLECTION_MAX = 200               # sObject Collections: at most 200 records a call
DELETE_LOG_WINDOW = timedelta(days=15)
LOOKUP_CHUNK = 200                 # values per IN (...) lookup
CHECK_SPAN = timedelta(minutes=2)  # /updated and /deleted want more than a minute of range


@dataclass
class _Plan:
    spec: StreamSpec
    cursor: Cursor | None
    window: CursorWindow
    reconcile: bool


class SalesforceConnector:
    """Reads streams, writes batches, describes objects; counts calls in ``self.calls``."""

    system = "salesforce"

    def __init__(self, client: SalesforceClient, *, lookback: timedelta,
                 stream_table: Sequence[StreamSpec] = streams.STREAMS) -> None:
        self.client = client
        self.lookback = lookback
        self.streams: dict[str, StreamSpec] = {s.name: s for s in stream_table}
        self.calls: ApiCallCounter = client.calls
        self.budget: DailyBudget = client.budget

    @classmethod
    def from_settings(cls, settings: Any, *, retry: RetryPolicy | None = None,
                      budget_history: Mapping[str, int] | None = None,
                      stream_table: Sequence[StreamSpec] = streams.STREAMS
                      ) -> SalesforceConnector:
        """Build from ``syncagent.settings.Settings`` (its ``.salesforce`` and ``.ca_bundle``)."""
        sf = settings.salesforce
        budget = DailyBudget("salesforce", sf.daily_budget_share, history=budget_history)
        ca: Path | None = settings.ca_bundle
        client = SalesforceClient(sf, ca_bundle=ca, retry=retry, budget=budget)
        return cls(client, lookback=timedelta(seconds=sf.lookback_seconds),
                   stream_table=stream_table)

    # --- reads -----------------------------------------------------------------------------
    def read(self, stream: str, cursor: Cursor | None, *, cycle_start: datetime | None = None,
             progress: ProgressCallback | None = None) -> Iterator[Page]:
        return self.read_many({stream: cursor}, cycle_start=cycle_start, progress=progress)

    def read_many(self, cursors: Mapping[str, Cursor | None], *,
                  cycle_start: datetime | None = None,
                  progress: ProgressCallback | None = None) -> Iterator[Page]:
        """Read several streams in the fewest calls.

        Each Composite call carries the first query page of up to five streams (hot streams
        first) and, for the others, a cheap change check (``/updated`` and ``/deleted``
        subrequests, not queries): a stream with no change yields one empty page with its
        cursor unchanged; one that changed is queried in the next Composite call. A quiet
        cycle of every stream therefore costs one API call.
        """
        start = (cycle_start or datetime.now(UTC)).astimezone(UTC)
        pending = sorted(cursors, key=_priority)
        for name in pending:
            self._spec(name)
        while pending:
            plans = [self._plan(name, cursors[name], start) for name in pending]
            queried = plans[:COMPOSITE_MAX_QUERIES]
            checked = [p for p in plans[COMPOSITE_MAX_QUERIES:] if self._can_check(p, start)]
            checked = checked[:MAX_CHECKS]
            waiting = [p.spec.name for p in plans[COMPOSITE_MAX_QUERIES:] if p not in checked]
            changed = yield from self._read_group(queried, checked, start, progress)
            pending = sorted([*changed, *waiting], key=_priority)

    def _can_check(self, plan: _Plan, start: datetime) -> bool:
        """A change check needs a cursor inside the /updated window (30 days)."""
        return (plan.cursor is not None and plan.cursor.modstamp is not None
                and not plan.reconcile
                and plan.cursor.modstamp > start - UPDATED_WINDOW + timedelta(hours=1))

    def _spec(self, name: str) -> StreamSpec:
        try:
            return self.streams[name]
        except KeyError:
            raise ConfigError(f"unknown Salesforce stream '{name}'",
                              hint="Known: " + ", ".join(self.streams)) from None

    def _plan(self, name: str, cursor: Cursor | None, start: datetime) -> _Plan:
        spec = self._spec(name)
        window = CursorWindow(cursor, lookback=self.lookback, cycle_start=start)
        lower = window.lower
        # Away longer than the delete log keeps: only a full id list shows hard deletes.
        reconcile = bool(spec.deletes and lower is not None
                         and lower < start - DELETE_LOG_WINDOW + timedelta(hours=1))
        return _Plan(spec, cursor, window, reconcile)

    def _read_group(self, queried: list[_Plan], checked: list[_Plan], start: datetime,
                    progress: ProgressCallback | None) -> Generator[Page, None, list[str]]:
        """One Composite call; yields the queried streams' pages; returns the checked streams
        that changed (they are queried next)."""
        for plan in queried:
            if plan.reconcile:
                yield from self._reconcile(plan)
        subrequests: list[dict[str, Any]] = []
        for plan in queried:
            subrequests.append(self._query_subrequest(plan))
            if plan.spec.deletes and plan.window.lower is not None and not plan.reconcile:
                subrequests.append(self._deleted_subrequest(plan, start))
        for plan in checked:
            subrequests.append(self._updated_subrequest(plan, start))
            if plan.spec.deletes:
                subrequests.append(self._deleted_subrequest(plan, start, since_cursor=True))
        answers = {a.get("referenceId"): a for a in self.client.composite(subrequests)}
        for plan in queried:
            answer = answers.get(_ref(plan.spec.name))
            if answer is None:
                raise FatalError(f"salesforce composite: no answer for {plan.spec.name}",
                                 system="salesforce")
            body = _subrequest_body(answer, operation=f"query {plan.spec.name}")
            deleted = self._deleted_rows(plan, answers.get(_ref(plan.spec.name, "deleted")))
            yield from self._pages(plan, body, deleted, start, progress)
        changed = []
        for plan in checked:
            if _has_changes(answers.get(_ref(plan.spec.name, "updated")),
                            answers.get(_ref(plan.spec.name, "deleted")), plan.spec.deletes,
                            _already_read(plan, start)):
                changed.append(plan.spec.name)
            else:
                # nothing changed since the cursor: the cursor stays (it is not advanced, so
                # late commits inside the lookback are still read when the stream next changes)
                yield Page(stream=plan.spec.name, object=plan.spec.object, records=[],
                           cursor=plan.cursor or Cursor(), done=True)
        return changed

    def _query_subrequest(self, plan: _Plan) -> dict[str, Any]:
        read_before = plan.cursor.modstamp if plan.cursor is not None else None
        soql = streams.incremental_soql(plan.spec, plan.window.lower, read_before=read_before,
                                        writer=self.client.settings.username)
        sub: dict[str, Any] = {"method": "GET", "referenceId": _ref(plan.spec.name),
                               "url": self.client.query_url(soql,
                                                            include_deleted=plan.spec.deletes)}
        batch = plan.spec.options.get("batch_size")
        if batch:
            # a smaller batch (200..2000) for streams with heavy rows
            sub["httpHeaders"] = {"Sforce-Query-Options": f"batchSize={int(batch)}"}
        return sub

    def _updated_subrequest(self, plan: _Plan, start: datetime) -> dict[str, Any]:
        """Ids changed since the cursor (its high-water mark; the lookback overlap is read when
        the stream is next queried, because a quiet stream keeps its cursor)."""
        since = plan.cursor.modstamp if plan.cursor and plan.cursor.modstamp else start
        begin = min(since, start - CHECK_SPAN)
        params = {"start": _sf_datetime(begin), "end": _sf_datetime(start)}
        url = self.client.data_path(f"sobjects/{plan.spec.object}/updated/", params)
        return {"method": "GET", "referenceId": _ref(plan.spec.name, "updated"), "url": url}

    def _deleted_subrequest(self, plan: _Plan, start: datetime, *,
                            since_cursor: bool = False) -> dict[str, Any]:
        lower = plan.window.lower or start
        if since_cursor and plan.cursor is not None and plan.cursor.modstamp is not None:
            lower = plan.cursor.modstamp
        begin = min(lower, start - timedelta(minutes=2))
        params = {"start": _sf_datetime(begin), "end": _sf_datetime(start)}
        url = self.client.data_path(f"sobjects/{plan.spec.object}/deleted/", params)
        return {"method": "GET", "referenceId": _ref(plan.spec.name, "deleted"), "url": url}

    def _deleted_rows(self, plan: _Plan, answer: Mapping[str, Any] | None
                      ) -> list[dict[str, Any]]:
        """Rows for ids the delete log reports (hard deletes that queryAll may not show)."""
        if answer is None:
            return []
        if answer.get("httpStatusCode") != 200:
            # e.g. INVALID_REPLICATION_DATE: the log starts later than our window (a young org);
            # queryAll still shows soft deletes, and a long absence triggers a full reconcile.
            log.info("salesforce.deleted_log_unavailable", stream=plan.spec.name,
                     status=answer.get("httpStatusCode"))
            return []
        body = answer.get("body") or {}
        return [{"Id": d["id"], "IsDeleted": True, "SystemModstamp": d.get("deletedDate")}
                for d in body.get("deletedRecords", []) if d.get("id")]

    def _pages(self, plan: _Plan, body: dict[str, Any], deleted: list[dict[str, Any]],
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
            records = self._convert(spec, window, rows, start)
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

    def _more(self, plan: _Plan, next_url: str, cursor: Cursor) -> dict[str, Any]:
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
        return _subrequest_body(answer[0], operation="query")

    def _convert(self, spec: StreamSpec, window: CursorWindow, rows: list[dict[str, Any]],
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

    def _reconcile(self, plan: _Plan) -> Iterator[Page]:
        """All live ids of the object (one query, paged); the pipeline deletes the rest."""
        spec = plan.spec
        log.info("salesforce.reconcile", stream=spec.name, reason="cursor older than 15 days")
        ids: set[str] = set()
        body = self._query(streams.ids_soql(spec.object))
        while True:
            ids.update(str(r["Id"]) for r in body.get("records", []))
            if body.get("done", True):
                break
            body = self.client.query_more(body["nextRecordsUrl"])
        yield Page(stream=spec.name, object=spec.object, records=[],
                   cursor=plan.cursor or Cursor(), done=False, reconcile_ids=frozenset(ids))

    def lookup(self, obj: str, field: str, values: Sequence[Any]) -> dict[Any, list[str]]:
        """Ids of ``obj`` whose ``field`` is one of ``values`` (quoted by the library)."""
        found: dict[Any, list[str]] = {}
        unique = list(dict.fromkeys(values))
        for i in range(0, len(unique), LOOKUP_CHUNK):
            soql = streams.lookup_soql(obj, field, unique[i:i + LOOKUP_CHUNK])
            body = self._query(soql)
            while True:
                for row in body.get("records", []):
                    found.setdefault(row.get(field), []).append(str(row["Id"]))
                if body.get("done", True):
                    break
                body = self.client.query_more(body["nextRecordsUrl"])
        return found

    def fetch(self, object: str, record_ids: Sequence[str]) -> list[RemoteRecord]:
        """Records by id, with the fields their stream reads (defaults the org filled in on a
        create, say): one query per 200 ids."""
        spec = next((s for s in self.streams.values()
                     if s.object == object and s.kind == "records"), None)
        if spec is None:
            return []
        out: list[RemoteRecord] = []
        for i in range(0, len(record_ids), LOOKUP_CHUNK):
            body = self._query(streams.by_id_soql(spec, record_ids[i:i + LOOKUP_CHUNK]))
            while True:
                out.extend(streams.to_record(spec, row) for row in body.get("records", []))
                if body.get("done", True):
                    break
                body = self.client.query_more(body["nextRecordsUrl"])
        return out

    # --- writes ----------------------------------------------------------------------------
    def write(self, object: str, operation: WriteOperation,
              batch: Sequence[WriteItem]) -> list[WriteResult]:
        if operation == "create" and object in streams.IDEMPOTENCY_FIELDS:
            # keyed creates go as upserts by key, the rest as plain creates; results keep order
            keyed = [n for n, item in enumerate(batch) if item.key]
            plain = [n for n, item in enumerate(batch) if not item.key]
            out: dict[int, WriteResult] = {}
            for group in (keyed, plain):
                done = self._write_all(object, operation, [batch[n] for n in group])
                out.update(zip(group, done, strict=True))
            return [out[n] for n in range(len(batch))]
        return self._write_all(object, operation, batch)

    def _write_all(self, obj: str, operation: WriteOperation,
                   batch: Sequence[WriteItem]) -> list[WriteResult]:
        def write(items: Sequence[WriteItem]) -> list[WriteResult]:
            results: list[WriteResult] = []
            for i in range(0, len(items), COLLECTION_MAX):
                results.extend(self._write_chunk(obj, operation, items[i:i + COLLECTION_MAX]))
            return results

        # records refused for some fields only go again at once, without those fields
        key_field = streams.IDEMPOTENCY_FIELDS.get(obj)
        protected = frozenset({key_field} if key_field else ())
        return isolate.write_isolated(batch, write(batch), write, protected)

    def _write_chunk(self, obj: str, operation: WriteOperation,
                     chunk: Sequence[WriteItem]) -> list[WriteResult]:
        ext_field = streams.IDEMPOTENCY_FIELDS.get(obj)
        refs = [WriteRef(obj, item.id, item.key) for item in chunk]
        records = []
        for item in chunk:
            record: dict[str, Any] = {"attributes": {"type": obj}, **item.fields}
            if operation == "update":
                if not item.id:
                    raise ConfigError(f"salesforce update of {obj} without an Id",
                                      hint="Updates need the record id.")
                record["Id"] = item.id
            elif item.key is not None and ext_field:
                record[ext_field] = item.key
            elif operation == "upsert":
                raise ConfigError(f"salesforce upsert of {obj} needs an idempotency key and "
                                  "an external-id field", hint="Only Task is upserted by key.")
            records.append(record)
        try:
            if operation == "update":
                answer = self.client.collections("PATCH", records)
            elif ext_field and all(item.key for item in chunk):
                # Creates carry their idempotency key: upsert by it, so a retried create (after
                # a timeout whose request did land) updates instead of making a second record.
                answer = self.client.collections("PATCH", records, sobject=obj,
                                                 external_id=ext_field)
            else:
                answer = self.client.collections("POST", records)
        except RetryableError as exc:
            return [_retryable(ref, exc) for ref in refs]
        if len(answer) != len(chunk):
            raise FatalError(f"salesforce collections answered {len(answer)} results for "
                             f"{len(chunk)} records", system="salesforce", object=obj)
        return [_result(ref, item) for ref, item in zip(refs, answer, strict=True)]

    # --- schema ----------------------------------------------------------------------------
    def describe(self, object: str) -> ObjectSchema:
        body = self.client.describe(object) or {}
        fields = {}
        for f in body.get("fields", []):
            options = tuple(p.get("value") for p in f.get("picklistValues") or []
                            if p.get("active", True))
            fields[f["name"]] = FieldSchema(name=f["name"], label=f.get("label", f["name"]),
                                            type=f.get("type", "string"),
                                            updateable=bool(f.get("updateable", False)),
                                            options=options, length=f.get("length") or None)
        return ObjectSchema(system="salesforce", object=object, fields=fields)

    def status(self) -> dict[str, Any]:
        """Calls made, budget, re-logins: for `syncagent status` and run reports."""
        return {"calls": self.calls.by_operation(), "budget": self.budget.status(),
                # the rolling per-hour call count: pass back as from_settings(budget_history=)
                "hours": self.budget.state(),
                "logins": self.client.logins, "reauths": self.client.reauths}

    @property
    def api_calls(self) -> int:
        """API calls made so far (logins excluded: they do not count against API limits)."""
        return self.calls.total - self.calls.by_operation().get("login", 0)

    def close(self) -> None:
        self.client.close()


def with_fields(spec: StreamSpec, extra: Sequence[str]) -> StreamSpec:
    """The spec with more fields (e.g. the ones the mappings use), order kept, no repeats."""
    return replace(spec, fields=tuple(dict.fromkeys((*spec.fields, *extra))))


def with_options(spec: StreamSpec, **options: Any) -> StreamSpec:
    """The spec with more connector options (e.g. ``batch_size=200``)."""
    return replace(spec, options={**spec.options, **options})


def _priority(name: str) -> int:
    """Hot streams get the Composite's query slots first."""
    order = streams.HOT_ORDER
    return order.index(name) if name in order else len(order)


def _already_read(plan: _Plan, start: datetime) -> frozenset[str]:
    """Ids the previous read emitted, when the change check must reach back before it.

    ``/updated`` wants more than a minute between start and end, so a check soon after a read
    re-covers rows that read saw; those ids are not news. A row that changed again in that
    short span is caught by a later check, once the window no longer reaches back before the
    cursor (a delay of two minutes at most; docs/connectors.md)."""
    if plan.cursor is None or plan.cursor.modstamp is None:
        return frozenset()
    if plan.cursor.modstamp <= start - CHECK_SPAN:
        return frozenset()
    return frozenset(key.partition("@")[0] for key in plan.cursor.boundary_ids)


def _has_changes(updated: Mapping[str, Any] | None, deleted: Mapping[str, Any] | None,
                 deletes: bool, already_read: frozenset[str] = frozenset()) -> bool:
    """Whether a change check saw anything (an unclear answer counts as a change)."""
    if updated is None or updated.get("httpStatusCode") != 200:
        return True
    if set((updated.get("body") or {}).get("ids") or ()) - already_read:
        return True
    if not deletes:
        return False
    if deleted is None or deleted.get("httpStatusCode") != 200:
        return True
    return bool((deleted.get("body") or {}).get("deletedRecords"))


def _ref(name: str, suffix: str = "q") -> str:
    return f"{name}_{suffix}"


def _sf_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _subrequest_body(answer: Mapping[str, Any], *, operation: str) -> dict[str, Any]:
    status = int(answer.get("httpStatusCode", 500))
    if status >= 300:
        raise errors.classify(status, answer.get("body"), operation=operation,
                              headers=answer.get("httpHeaders"))
    return dict(answer.get("body") or {})


def _retryable(ref: WriteRef, exc: SyncAgentError) -> WriteResult:
    code = exc.fields.get("code") or type(exc).__name__
    return WriteResult(ref=ref, status="retryable", code=str(code), message=exc.message,
                       retry_after=getattr(exc, "retry_after", None))


def _result(ref: WriteRef, item: Mapping[str, Any]) -> WriteResult:
    if item.get("success"):
        return WriteResult(ref=ref, status="ok", id=item.get("id") or ref.id,
                           created=item.get("created"))
    errs = item.get("errors") or [{}]
    code = str(errs[0].get("statusCode") or "UNKNOWN_EXCEPTION")
    message = str(errs[0].get("message") or "")
    fields = errs[0].get("fields") or []
    if fields:
        message = f"{message} (fields: {', '.join(map(str, fields))})"
    return WriteResult(ref=ref, status=errors.record_status(code),  # type: ignore[arg-type]
                       id=item.get("id"), code=code, message=message,
                       field_errors=isolate.field_errors(errs))


__all__ = ["RemoteRecord", "SalesforceConnector", "with_fields"]
