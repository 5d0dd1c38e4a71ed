"""SalesforceConnector: the Connector protocol over :class:`SalesforceClient`.

Reads: the first page of up to five streams travels in ONE Composite call (each subrequest a
``queryAll`` from the stream's cursor, plus a free ``/deleted`` subrequest for streams that have
deletes), so an incremental cycle where little changed costs one API call per five streams;
further pages follow ``nextRecordsUrl``. Writes: sObject Collections, 200 per call.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import replace
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
from connectors.salesforce.schema_cache import (
    FEATURES,
    REQUIRED_FIELDS,
    SchemaCache,
    preflight_error,
)
from connectors.salesforce.streams import with_fields, with_options
from syncagent.errors import ConfigError, FatalError, RetryableError, SyncAgentError

log = structlog.get_logger(__name__)

COMPOSITE_MAX_QUERIES = 5          # Composite: at most 5 query/collection subrequests
COMPOSITE_MAX_SUBREQUESTS = 25
MAX_CHECKS = (COMPOSITE_MAX_SUBREQUESTS - 2 * COMPOSITE_MAX_QUERIES) // 2   # updated + deleted
UPDATED_WINDOW = timedelta(days=30)
COLLECTION_MAX = 200               # sObject Collections: at most 200 records a call
DELETE_LOG_WINDOW = timedelta(days=15)
LOOKUP_CHUNK = 200                 # values per IN (...) lookup


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
        self.schema = SchemaCache(client)

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

    def _can_check(self, plan: Plan, start: datetime) -> bool:
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

    def _readable(self, name: str) -> StreamSpec:
        """The stream with only the fields the org has and the user can read (as far as the
        cached describe knows)."""
        spec = self._spec(name)
        return replace(spec, fields=self.schema.selectable(spec.object, spec.fields))

    def _plan(self, name: str, cursor: Cursor | None, start: datetime) -> Plan:
        spec = self._readable(name)
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
                plan.spec = self._readable(plan.spec.name)
        return answers

    def preflight(self) -> None:
        """Before a cycle that writes: the org must have the fields every cycle writes, and the
        integration user must be able to edit them (one describe call, then cached)."""
        self.schema.load([*REQUIRED_FIELDS, *(s.object for s in self.streams.values())])
        missing = self.schema.missing_required()
        if missing:
            self.schema.forget()     # an admin may fix the org while `run` waits: look again
            raise preflight_error(missing)

    def schema_facts(self) -> dict[str, Any] | None:
        """Describe facts read since the last call, for the next process (None: nothing new)."""
        return self.schema.facts()

    def adopt_schema_facts(self, facts: Mapping[str, Any]) -> None:
        self.schema.adopt(facts)    # an earlier process's: preflight reads only stale ones

    @property
    def features_off(self) -> dict[str, str]:
        """Features switched off because a field they need is missing: feature -> why."""
        return dict(self.schema.features_off)

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

    def _reconcile(self, plan: Plan) -> Iterator[Page]:
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
        """Records by id with the fields their stream reads (e.g. ones the agent just created,
        with the defaults the org filled in): one query per 200 ids."""
        names = [s.name for s in self.streams.values()
                 if s.object == object and s.kind == "records"]
        if not names:
            return []
        spec = self._readable(names[0])
        out: list[RemoteRecord] = []
        for i in range(0, len(record_ids), LOOKUP_CHUNK):
            body = self._query(streams.by_id_soql(spec, record_ids[i:i + LOOKUP_CHUNK]))
            while True:
                out += [streams.to_record(spec, row) for row in body.get("records", [])]
                if body.get("done", True):
                    break
                body = self.client.query_more(body["nextRecordsUrl"])
        return out

    # --- writes ----------------------------------------------------------------------------
    def write(self, object: str, operation: WriteOperation,
              batch: Sequence[WriteItem]) -> list[WriteResult]:
        batch = [self._without_unwritable(object, item) for item in batch]
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

    def _without_unwritable(self, obj: str, item: WriteItem) -> WriteItem:
        """The item without the optional-feature fields the cached describe says the user
        cannot write (their feature is off and reported; the rest of the record is written).
        Any other field goes out as planned, so the org's refusal is recorded, not hidden."""
        dropped = [name for name in item.fields
                   if (obj, name) in FEATURES and not self.schema.writable(obj, name)]
        if not dropped:
            return item
        for name in dropped:
            self.schema.selectable(obj, (name,))   # warns once and switches the feature off
        return replace(item, fields={k: v for k, v in item.fields.items() if k not in dropped})

    def _write_all(self, obj: str, operation: WriteOperation,
                   batch: Sequence[WriteItem]) -> list[WriteResult]:
        def write(items: Sequence[WriteItem]) -> list[WriteResult]:
            return [result for i in range(0, len(items), COLLECTION_MAX) for result in
                    self._write_chunk(obj, operation, items[i:i + COLLECTION_MAX])]

        # records refused for some fields only go again at once, without them (isolate.py)
        key_field = streams.IDEMPOTENCY_FIELDS.get(obj)
        protected = frozenset({key_field} if key_field else ())
        # a refusal for a field the describe said exists reads it again (schema_cache.py)
        return self.schema.after_refusals(obj, isolate.write_isolated(batch, write(batch),
                                                                      write, protected))

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

    def watch(self, stop: threading.Event) -> None:
        """Retry waits end as soon as ``stop`` is set (one event per cycle)."""
        self.client.retry.stop = stop

    def status(self) -> dict[str, Any]:
        """Calls made, budget, re-logins: for `syncagent status` and run reports."""
        return {"calls": self.calls.by_operation(), "budget": self.budget.status(),
                # the rolling per-hour call count: pass back as from_settings(budget_history=)
                "hours": self.budget.state(),
                "logins": self.client.logins, "reauths": self.client.reauths,
                "features_off": self.features_off}

    @property
    def api_calls(self) -> int:
        """API calls made so far (logins excluded: they do not count against API limits)."""
        return self.calls.total - self.calls.by_operation().get("login", 0)

    def close(self) -> None:
        self.client.close()


def _priority(name: str) -> int:
    """Hot streams get the Composite's query slots first."""
    order = streams.HOT_ORDER
    return order.index(name) if name in order else len(order)


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


__all__ = ["RemoteRecord", "SalesforceConnector", "with_fields", "with_options"]
