"""The Salesforce REST API of the sandbox: routes, auth/limits gate, and every resource.

Each resource is a plain function ``(api, request) -> Reply`` registered in ``ROUTES``; the
same table serves HTTP (one FastAPI route per template, so stats see real templates) and the
subrequests of ``/composite``, which run in-process and count as one API call in total.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import structlog

from syncagent.sandbox.salesforce import ids
from syncagent.sandbox.salesforce.aggregate import aggregate_rows
from syncagent.sandbox.salesforce.org import SalesforceContext, SalesforceOrg
from syncagent.sandbox.salesforce.schema import (
    PREFIX_TO_OBJECT,
    SObjectDef,
    describe_global_entry,
    describe_object,
)
from syncagent.sandbox.salesforce.soql import Query, SoqlError, parse, parse_datetime
from syncagent.sandbox.salesforce.validation import Prepared, WriteError
from syncagent.sandbox.salesforce.values import RequestError, format_datetime

log = structlog.get_logger(__name__)

MIN_VERSION, MAX_VERSION = 59, 66
RELEASES = {59: "Winter '24", 60: "Spring '24", 61: "Summer '24", 62: "Winter '25",
            63: "Spring '25", 64: "Summer '25", 65: "Winter '26", 66: "Spring '26"}
MAX_COLLECTION = 200
MAX_COMPOSITE = 25
MAX_COMPOSITE_QUERIES = 5
#: a subrequest's url, as a plain request's URI and headers (router.MAX_HEAD_BYTES)
MAX_SUBREQUEST_URL_BYTES = 16_384
DEFAULT_BATCH, MIN_BATCH = 2000, 200
UPDATED_WINDOW = timedelta(days=30)
DELETED_WINDOW = timedelta(days=15)
MAX_REPLICATION_IDS = 600_000
_VERSION_RE = re.compile(r"^v(\d{2,3})\.\d$")

NOT_FOUND = RequestError(404, "NOT_FOUND", "The requested resource does not exist")


@dataclass
class SfRequest:
    method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    version: str = ""

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise RequestError(400, "JSON_PARSER_ERROR",
                               f"Unexpected character: was expecting a JSON value at "
                               f"[line:{error.lineno if hasattr(error, 'lineno') else 1}, "
                               f"column:{getattr(error, 'colno', 1)}]") from None


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["SalesforceApi", SfRequest], Reply]


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    template: str           # below /services/data/{version}
    handler: Handler
    heavy: bool = False     # a query or collection: at most 5 per composite

    @property
    def regex(self) -> re.Pattern[str]:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template.rstrip("/"))
        return re.compile(f"^{pattern}/?$")


class SalesforceApi:
    """Resource handlers over the current org (``ctx.sf`` is swapped on reset)."""

    def __init__(self, ctx: SalesforceContext) -> None:
        self.ctx = ctx

    @property
    def org(self) -> SalesforceOrg:
        return self.ctx.sf

    def reject(self) -> bool:
        return self.ctx.faults.reject_record("salesforce")

    # ---------------------------------------------------------------- gate

    def gate(self, headers: Mapping[str, str]) -> Reply | None:
        """Session check, session expiry, daily quota, and counting: None lets the call on."""
        org = self.org
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() not in ("bearer", "oauth") or token not in org.sessions:
            return self._invalid_session()
        limit = self.ctx.faults.profile.session_expiry_after_calls
        if limit is not None and org.sessions[token] >= limit:
            del org.sessions[token]
            return self._invalid_session()
        now = self.ctx.clock.now()
        quota = self.ctx.faults.profile.salesforce_daily_quota
        if org.usage.used(now) >= quota:
            return Reply(403, [{"message": "TotalRequests Limit exceeded.",
                                "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
        org.sessions[token] += 1
        org.usage.add(now)
        return None

    @staticmethod
    def _invalid_session() -> Reply:
        return Reply(401, [{"message": "Session expired or invalid",
                            "errorCode": "INVALID_SESSION_ID"}])

    def limit_header(self) -> str:
        used = self.org.usage.used(self.ctx.clock.now())
        return f"api-usage={used}/{self.ctx.faults.profile.salesforce_daily_quota}"

    def run(self, route: Route, req: SfRequest) -> Reply:
        """Run one handler, turning refusals into Salesforce error bodies."""
        try:
            req.version = check_version(req.params.get("version", ""))
            return route.handler(self, req)
        except RequestError as error:
            return Reply(error.status, error.body())
        except SoqlError as error:
            return Reply(400, [{"message": error.message, "errorCode": error.code}])
        except Exception:
            # An emulator bug: answer like Salesforce's own 500, and leave the traceback in
            # the log so it is found rather than mistaken for an injected fault.
            log.exception("sandbox.salesforce.handler_failed", method=req.method,
                          path=req.path)
            return Reply(500, [{"message": "An unexpected error occurred. Please include this "
                                "ErrorId if you contact support: sandbox-bug",
                                "errorCode": "UNKNOWN_EXCEPTION"}])


def check_version(text: str) -> str:
    """The version of a /services/data/vNN.N path: any version from 59.0 on is served
    (clients newer than the emulator keep working); older ones are 404 as in Salesforce."""
    match = _VERSION_RE.match(text)
    if match is None or int(match.group(1)) < MIN_VERSION:
        raise NOT_FOUND
    return text[1:]


# -------------------------------------------------------------------- metadata


def versions_body() -> list[dict[str, str]]:
    return [{"label": RELEASES[v], "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
            for v in range(MIN_VERSION, MAX_VERSION + 1)]


def h_resources(api: SalesforceApi, req: SfRequest) -> Reply:
    base = f"/services/data/v{req.version}"
    names = ("sobjects", "query", "queryAll", "composite", "limits", "search", "recent",
             "tooling", "jobs")
    return Reply(200, {name: f"{base}/{name}" for name in names})


def h_describe_global(api: SalesforceApi, req: SfRequest) -> Reply:
    views = [api.org.schema.view(name) for name in api.org.schema.objects]
    return Reply(200, {"encoding": "UTF-8", "maxBatchSize": MAX_COLLECTION, "sobjects": [
        describe_global_entry(obj, req.version) for obj in views if obj is not None]})


def _object(api: SalesforceApi, req: SfRequest) -> SObjectDef:
    """The object of the path as the integration user sees it (describe and every read and
    write use this view: fields without read access are not there)."""
    obj = api.org.schema.view(req.params["sobject"])
    if obj is None:
        raise RequestError(404, "NOT_FOUND", "The requested resource does not exist")
    return obj


def h_describe(api: SalesforceApi, req: SfRequest) -> Reply:
    return Reply(200, describe_object(_object(api, req), req.version))


def h_sobject(api: SalesforceApi, req: SfRequest) -> Reply:
    obj = _object(api, req)
    if req.method == "POST":
        return create_one(api, obj, req.json(), req.version)
    return Reply(200, {"objectDescribe": describe_global_entry(obj, req.version),
                       "recentItems": []})


def h_limits(api: SalesforceApi, req: SfRequest) -> Reply:
    quota = api.ctx.faults.profile.salesforce_daily_quota
    used = api.org.usage.used(api.ctx.clock.now())

    def entry(limit: int, remaining: int | None = None) -> dict[str, int]:
        return {"Max": limit, "Remaining": limit if remaining is None else remaining}

    return Reply(200, {
        "ConcurrentAsyncGetReportInstances": entry(200),
        "DailyApiRequests": entry(quota, max(0, quota - used)),
        "DailyAsyncApexExecutions": entry(250000),
        "DailyBulkApiBatches": entry(15000),
        "DailyBulkV2QueryFileStorageMB": entry(976562),
        "DailyBulkV2QueryJobs": entry(10000),
        "DailyStreamingApiEvents": entry(1000000),
        "DataStorageMB": entry(1024),
        "FileStorageMB": entry(1024),
        "HourlyTimeBasedWorkflow": entry(1000),
        "SingleEmail": entry(5000),
    })


# -------------------------------------------------------------------- query


def _batch_size(req: SfRequest, long_custom_fields: int) -> int:
    batch = DEFAULT_BATCH
    options = req.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    if match:
        batch = max(MIN_BATCH, min(DEFAULT_BATCH, int(match.group(1))))
    if long_custom_fields >= 2:   # two or more custom long-text fields cap a batch at 200
        batch = min(batch, MIN_BATCH)
    return batch


def _page(api: SalesforceApi, req: SfRequest, endpoint: str, locator: str | None,
          rows: list[dict[str, Any]], offset: int, batch: int, serialize: Any) -> Reply:
    end = offset + batch
    body: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows)}
    if end < len(rows):
        if locator is None:
            raise AssertionError("a cursor is needed for a second page")
        body["nextRecordsUrl"] = f"/services/data/v{req.version}/{endpoint}/{locator}-{end}"
    body["records"] = [serialize(r) for r in rows[offset:end]]
    return Reply(200, body)


def h_query(api: SalesforceApi, req: SfRequest) -> Reply:
    endpoint = "queryAll" if "/queryAll" in req.path else "query"
    soql = req.query.get("q")
    if not soql:
        raise RequestError(400, "MALFORMED_QUERY", "A query string has to be specified")
    query = parse(soql, api.org.schema.view)
    if query.is_aggregate:
        return _aggregate_reply(api, query, include_deleted=endpoint == "queryAll")
    rows = api.org.run_query(query, include_deleted=endpoint == "queryAll")
    if query.count_only:
        return Reply(200, {"totalSize": len(rows), "done": True, "records": []})
    long_custom = sum(1 for p in query.fields if p.target.is_long_text and p.target.custom)
    batch = _batch_size(req, long_custom)
    locator = api.org.open_cursor(rows, query, batch) if len(rows) > batch else None
    serialize = api.org.serializer(query.fields, query.obj.name, req.version)
    return _page(api, req, endpoint, locator, rows, 0, batch, serialize)


def _aggregate_reply(api: SalesforceApi, query: Query, *, include_deleted: bool) -> Reply:
    """GROUP BY and aggregate functions: AggregateResult rows, one page (no queryMore)."""
    matching = replace(query, order=[], limit=None, offset=0)
    rows = api.org.run_query(matching, include_deleted=include_deleted)
    groups = aggregate_rows(query, rows, api.org.lookup)
    return Reply(200, {"totalSize": len(groups), "done": True, "records": groups})


def h_query_more(api: SalesforceApi, req: SfRequest) -> Reply:
    endpoint = "queryAll" if "/queryAll" in req.path else "query"
    locator, _, offset_text = req.params["locator"].rpartition("-")
    cursor = api.org.cursor(locator) if offset_text.isdigit() else None
    if cursor is None:
        raise RequestError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    offset = int(offset_text)
    if offset > len(cursor.rows):
        raise RequestError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    serialize = api.org.serializer(cursor.query.fields, cursor.query.obj.name, req.version)
    return _page(api, req, endpoint, locator, cursor.rows, offset, cursor.batch, serialize)


# -------------------------------------------------------------------- single records


def _errors_reply(errors: list[WriteError], status: int = 400) -> Reply:
    return Reply(status, [{"message": e.message, "errorCode": e.code, "fields": e.fields}
                          for e in errors])


def _body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(400, "JSON_PARSER_ERROR",
                           "Cannot deserialize instance of SObject from non-object value")
    return body


def create_one(api: SalesforceApi, obj: SObjectDef, body: Any, version: str) -> Reply:
    outcome = api.org.prepare(obj, _body_object(body), record_id=None, reject=api.reject)
    if isinstance(outcome, list):
        return _errors_reply(outcome)
    record_id, _ = api.org.apply(outcome)
    api.ctx.count_written(obj.name, 1)
    if obj.name == "Task":
        api.ctx.count_tasks("salesforce", 1)
    return Reply(201, {"id": record_id, "success": True, "errors": []},
                 {"Location": f"/services/data/v{version}/sobjects/{obj.name}/{record_id}"})


def h_record(api: SalesforceApi, req: SfRequest) -> Reply:
    obj = _object(api, req)
    record_id = req.params["record_id"]
    if not ids.is_valid(record_id) or PREFIX_TO_OBJECT.get(record_id[:3]) != obj.name:
        if req.method == "GET" and ids.is_valid(record_id):
            raise NOT_FOUND
        raise RequestError(404, "NOT_FOUND", "Provided external ID field does not exist or "
                           f"is not accessible: {record_id}")
    rec = api.org.table(obj.name).get(ids.to18(record_id))
    if rec is None:
        raise NOT_FOUND
    if req.method == "GET":
        if rec.get("IsDeleted"):
            raise RequestError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        fields = req.query.get("fields")
        only = _field_list(obj, fields) if fields else None
        return Reply(200, api.org.full_record(obj, rec, req.version, only))
    if req.method == "DELETE":
        error = api.org.api_delete(rec["Id"], obj)
        if error is not None:
            return _errors_reply([error], 404 if error.code == "ENTITY_IS_DELETED" else 400)
        return Reply(204)
    outcome = api.org.prepare(obj, _body_object(req.json()), record_id=rec["Id"],
                              reject=api.reject)
    if isinstance(outcome, list):
        deleted = any(e.code == "ENTITY_IS_DELETED" for e in outcome)
        return _errors_reply(outcome, 404 if deleted else 400)
    api.org.apply(outcome)
    api.ctx.count_written(obj.name, 1)
    return Reply(204)


def _field_list(obj: SObjectDef, text: str) -> list[str]:
    names = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        f = obj.field(name)
        if f is None:
            raise RequestError(400, "INVALID_FIELD",
                               f"No such column '{name}' on entity '{obj.name}'. If you are "
                               "attempting to use a custom field, be sure to append the '__c' "
                               "after the custom field name. Please reference your WSDL or the "
                               "describe call for the appropriate names.")
        names.append(f.name)
    return names


def _external_field(obj: SObjectDef, name: str) -> str:
    f = obj.field(name)
    if f is None or not (f.external_id or f.name == "Id"):
        raise RequestError(404, "NOT_FOUND", "Provided external ID field does not exist or is "
                           f"not accessible: {name}")
    return f.name


def h_by_external_id(api: SalesforceApi, req: SfRequest) -> Reply:
    obj = _object(api, req)
    fname = _external_field(obj, req.params["field"])
    value = unquote(req.params["value"])
    match_id = _match_external(api.org, obj, fname, value)
    rec = api.org.table(obj.name).get(match_id) if match_id else None
    if req.method == "GET":
        if rec is None or rec.get("IsDeleted"):
            raise NOT_FOUND
        return Reply(200, api.org.full_record(obj, rec, req.version))
    if req.method == "DELETE":
        if rec is None:
            raise NOT_FOUND
        error = api.org.api_delete(rec["Id"], obj)
        return _errors_reply([error]) if error else Reply(204)
    body = dict(_body_object(req.json()))
    if fname != "Id":
        given = field_value(body, fname)
        if given is not None and str(given) != value:
            return _errors_reply([WriteError(
                "INVALID_FIELD", f"The value of {fname} in the body does not match the value "
                "in the URL", [fname])])
        body[fname] = value
    outcome = api.org.prepare(obj, body, record_id=match_id, reject=api.reject)
    if isinstance(outcome, list):
        return _errors_reply(outcome)
    record_id, created = api.org.apply(outcome)
    api.ctx.count_written(obj.name, 1)
    if obj.name == "Task":
        api.ctx.count_tasks("salesforce", int(created))
    return Reply(201 if created else 200,
                 {"id": record_id, "success": True, "errors": [], "created": created})


def _match_external(org: SalesforceOrg, obj: SObjectDef, fname: str, value: str) -> str | None:
    if fname == "Id":
        if not ids.is_valid(value):
            return None
        rid = ids.to18(value)
        return rid if rid in org.table(obj.name) else None
    return org.find_unique(obj, fname, value)


# -------------------------------------------------------------------- replication


def _replication_range(req: SfRequest) -> tuple[datetime, datetime]:
    try:
        start = parse_datetime(req.query["start"])
        end = parse_datetime(req.query["end"])
    except (KeyError, ValueError):
        raise RequestError(400, "INVALID_REPLICATION_DATE",
                           "start and end must be ISO 8601 dateTime values") from None
    if end - start <= timedelta(minutes=1):
        raise RequestError(400, "INVALID_REPLICATION_DATE",
                           "startDate must chronologically precede endDate by more than one "
                           "minute")
    return start, end


def _floor_minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def h_updated(api: SalesforceApi, req: SfRequest) -> Reply:
    obj = _object(api, req)
    start, end = _replication_range(req)
    now = api.ctx.clock.now()
    if start < now - UPDATED_WINDOW:
        raise RequestError(400, "INVALID_REPLICATION_DATE",
                           "startDate cannot be more than 30 days ago")
    covered = _floor_minute(min(end, now))
    rows = [r for r in api.org.table(obj.name).values()
            if start <= r["SystemModstamp"] < covered and not r.get("IsDeleted")]
    if len(rows) > MAX_REPLICATION_IDS:
        raise RequestError(400, "EXCEEDED_ID_LIMIT", "record limit reached. The number of ids "
                           "returned exceeds 600,000: use a shorter date range")
    rows.sort(key=lambda r: (r["SystemModstamp"], r["Id"]))
    return Reply(200, {"ids": [r["Id"] for r in rows],
                       "latestDateCovered": format_datetime(covered)})


def h_deleted(api: SalesforceApi, req: SfRequest) -> Reply:
    obj = _object(api, req)
    start, end = _replication_range(req)
    now = api.ctx.clock.now()
    api.org.purge(obj.name)
    earliest = api.org.earliest_date_available(obj.name)
    if start < now - DELETED_WINDOW or start < earliest:
        available = max(earliest, _floor_minute(now - DELETED_WINDOW))
        raise RequestError(400, "INVALID_REPLICATION_DATE",
                           "startDate is before the earliest date available "
                           f"({format_datetime(available)}); the recycle bin keeps deleted "
                           "records for 15 days")
    covered = _floor_minute(min(end, now))
    deleted = api.org.deleted_between(obj.name, start, covered)
    return Reply(200, {
        "deletedRecords": [{"id": rid, "deletedDate": format_datetime(when)}
                           for rid, when in deleted],
        "earliestDateAvailable": format_datetime(_floor_minute(earliest)),
        "latestDateCovered": format_datetime(covered)})


# -------------------------------------------------------------------- collections


def _collection_body(req: SfRequest) -> tuple[list[Any], bool]:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise RequestError(400, "JSON_PARSER_ERROR",
                           "Cannot deserialize instance of SObjectCollectionRequest: expected "
                           "{\"allOrNone\": ..., \"records\": [...]}")
    records = body["records"]
    if len(records) > MAX_COLLECTION:
        raise RequestError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more "
                           "than 200 records into this call")
    return records, bool(body.get("allOrNone", False))


def field_value(body: dict[str, Any], name: str) -> Any:
    """A value of a JSON body by field name, case-insensitively as Salesforce reads bodies
    (its sObject Collections guide asks for "an id field" and its examples send ``"id"``:
    REST API Developer Guide, "Update Records Using sObject Collections",
    https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-update.html)."""
    if name in body:
        return body[name]
    lower = name.lower()
    for key, value in body.items():
        if key.lower() == lower:
            return value
    return None


def _record_type(api: SalesforceApi, rec: Any) -> SObjectDef | WriteError:
    if not isinstance(rec, dict):
        return WriteError("JSON_PARSER_ERROR", "each record must be a JSON object")
    attrs = field_value(rec, "attributes")
    name = field_value(attrs, "type") if isinstance(attrs, dict) else None
    if not name:
        return WriteError("INVALID_TYPE", "Must send a concrete entity type.")
    obj = api.org.schema.view(str(name))
    if obj is None:
        return WriteError("INVALID_TYPE", f"sObject type '{name}' is not supported.")
    return obj


ROLLED_BACK = WriteError("ALL_OR_NONE_OPERATION_ROLLED_BACK",
                         "Record rolled back because not all records were valid and the "
                         "request was using AllOrNone header")


def _fail(errors: list[WriteError], record_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"success": False, "errors": [e.as_dict() for e in errors]}
    if record_id:
        out = {"id": record_id, **out}
    return out


def _write_collection(api: SalesforceApi, outcomes: list[Prepared | list[WriteError]],
                      all_or_none: bool, ref_ids: list[str | None], upsert: bool,
                      task_call: bool = False) -> Reply:
    """Apply prepared records in order; allOrNone turns the good ones into rollbacks.
    ``task_call``: the request carried Tasks (counted for /__sandbox/stats)."""
    if all_or_none and any(isinstance(o, list) for o in outcomes):
        if task_call:
            api.ctx.count_tasks("salesforce", 0)
        return Reply(200, [_fail(o if isinstance(o, list) else [ROLLED_BACK], rid)
                           for o, rid in zip(outcomes, ref_ids, strict=True)])
    results = []
    tasks_made = 0
    for outcome, rid in zip(outcomes, ref_ids, strict=True):
        if isinstance(outcome, list):
            results.append(_fail(outcome, rid))
            continue
        record_id, created = api.org.apply(outcome)
        api.ctx.count_written(outcome.obj.name, 1)
        tasks_made += created and outcome.obj.name == "Task"
        entry: dict[str, Any] = {"id": record_id, "success": True, "errors": []}
        if upsert:
            entry["created"] = created
        results.append(entry)
    if task_call:
        api.ctx.count_tasks("salesforce", tasks_made)
    return Reply(200, results)


def _names_task(rec: Any) -> bool:
    """A Collections record whose attributes say it is a Task."""
    attributes = rec.get("attributes") if isinstance(rec, dict) else None
    return isinstance(attributes, dict) and str(attributes.get("type", "")).lower() == "task"


def h_collection(api: SalesforceApi, req: SfRequest) -> Reply:
    if req.method == "DELETE":
        return _delete_collection(api, req)
    if req.method == "GET":
        raise RequestError(400, "MISSING_ARGUMENT", "sObject type is required: "
                           "GET /composite/sobjects/{SObject}?ids=...&fields=...")
    records, all_or_none = _collection_body(req)
    creating = req.method == "POST"
    outcomes: list[Prepared | list[WriteError]] = []
    ref_ids: list[str | None] = []
    batch_keys: dict[tuple[str, str], int] = {}
    for rec in records:
        obj = _record_type(api, rec)
        rid = None if creating or not isinstance(rec, dict) else field_value(rec, "Id")
        ref_ids.append(rid)
        if isinstance(obj, WriteError):
            outcomes.append([obj])
            continue
        if not creating and not rid:
            outcomes.append([WriteError("MISSING_ARGUMENT", "Id not specified in an update call",
                                        ["Id"])])
            continue
        outcomes.append(api.org.prepare(obj, rec, record_id=rid, reject=api.reject,
                                        batch_keys=batch_keys))
    return _write_collection(api, outcomes, all_or_none, ref_ids, upsert=False,
                             task_call=creating and any(_names_task(r) for r in records))


def h_collection_upsert(api: SalesforceApi, req: SfRequest) -> Reply:
    obj = _object(api, req)
    fname = _external_field(obj, req.params["field"])
    records, all_or_none = _collection_body(req)
    keys = [str(field_value(r, fname)) if isinstance(r, dict)
            and field_value(r, fname) is not None else None for r in records]
    repeated = {k for k in keys if k is not None and keys.count(k) > 1}
    outcomes: list[Prepared | list[WriteError]] = []
    ref_ids: list[str | None] = []
    for rec, key in zip(records, keys, strict=True):
        rec_obj = _record_type(api, rec)
        if isinstance(rec_obj, WriteError) or rec_obj.name != obj.name:
            outcomes.append([rec_obj if isinstance(rec_obj, WriteError) else WriteError(
                "INVALID_TYPE", f"Record type {rec_obj.name} does not match {obj.name}")])
            ref_ids.append(None)
            continue
        if key is None:
            outcomes.append([WriteError("MISSING_ARGUMENT", f"{fname} not specified",
                                        [fname])])
            ref_ids.append(None)
            continue
        if key in repeated:
            outcomes.append([WriteError("DUPLICATE_EXTERNAL_ID",
                                        f"Duplicate external id specified: {key}", [fname])])
            ref_ids.append(None)
            continue
        match_id = _match_external(api.org, obj, fname, key)
        ref_ids.append(match_id)
        outcomes.append(api.org.prepare(obj, rec, record_id=match_id, reject=api.reject))
    return _write_collection(api, outcomes, all_or_none, ref_ids, upsert=True,
                             task_call=obj.name == "Task")


def _delete_collection(api: SalesforceApi, req: SfRequest) -> Reply:
    id_list = [i for i in req.query.get("ids", "").split(",") if i]
    if not id_list:
        raise RequestError(400, "MISSING_ARGUMENT", "ids parameter is required")
    if len(id_list) > MAX_COLLECTION:
        raise RequestError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more "
                           "than 200 records into this call")
    all_or_none = req.query.get("allOrNone", "false").lower() == "true"
    org = api.org
    mark = org.savepoint()
    results: list[dict[str, Any]] = []
    failed = False
    for rid in id_list:
        error = org.api_delete(rid)
        if error is None:
            results.append({"id": ids.to18(rid), "success": True, "errors": []})
        else:
            failed = True
            results.append(_fail([error], rid))
    if all_or_none and failed:
        org.rollback_to(mark)
        results = [r if not r["success"] else _fail([ROLLED_BACK], r["id"]) for r in results]
    else:
        org.release(mark)
        for rid, r in zip(id_list, results, strict=True):
            if r["success"]:
                api.ctx.count_written(PREFIX_TO_OBJECT[rid[:3]], 1)
    return Reply(200, results)


def h_collection_retrieve(api: SalesforceApi, req: SfRequest) -> Reply:
    obj = _object(api, req)
    if req.method == "POST":
        body = _body_object(req.json())
        id_list, fields_list = body.get("ids") or [], body.get("fields") or []
    else:
        id_list = [i for i in req.query.get("ids", "").split(",") if i]
        fields_list = [f for f in req.query.get("fields", "").split(",") if f]
    if not fields_list:
        raise RequestError(400, "MISSING_ARGUMENT", "fields parameter is required")
    if len(id_list) > 2000:
        raise RequestError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more "
                           "than 2000 records into this call")
    only = _field_list(obj, ",".join(fields_list))
    table = api.org.table(obj.name)
    out: list[Any] = []
    for rid in id_list:
        rec = table.get(ids.to18(rid)) if ids.is_valid(rid) else None
        out.append(None if rec is None or rec.get("IsDeleted") else
                   api.org.full_record(obj, rec, req.version, only))
    return Reply(200, out)


# -------------------------------------------------------------------- composite

_REF_RE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")


class _Unresolved(Exception):
    def __init__(self, expression: str) -> None:
        super().__init__(expression)
        self.expression = expression


def _resolve_refs(value: Any, results: dict[str, Any]) -> Any:
    """Replace @{ref.path} in strings (recursively in lists and dicts)."""
    if isinstance(value, dict):
        return {k: _resolve_refs(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, results) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value

    def lookup(match: re.Match[str]) -> str:
        ref, path = match.group(1), match.group(2)
        if ref not in results:
            raise _Unresolved(match.group(0))
        current = results[ref]
        for part in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
            key, index = part
            try:
                current = current[key] if key else current[int(index)]
            except (KeyError, IndexError, TypeError):
                raise _Unresolved(match.group(0)) from None
        return str(current)

    return _REF_RE.sub(lookup, value)


def h_composite(api: SalesforceApi, req: SfRequest) -> Reply:
    body = _body_object(req.json())
    subs = body.get("compositeRequest")
    if not isinstance(subs, list) or not subs:
        raise RequestError(400, "JSON_PARSER_ERROR", "compositeRequest is required")
    if len(subs) > MAX_COMPOSITE:
        raise RequestError(400, "LIMIT_EXCEEDED", "Composite Request: the number of "
                           f"subrequests ({len(subs)}) exceeds the maximum of 25")
    routes = [(_match_route(str(s.get("method", "GET")), str(s.get("url", ""))) if
               isinstance(s, dict) else None) for s in subs]
    heavy = sum(1 for r in routes if r is not None and r[0].heavy)
    if heavy > MAX_COMPOSITE_QUERIES:
        raise RequestError(400, "LIMIT_EXCEEDED", "Composite Request: at most 5 subrequests "
                           "may be queries or sObject Collections")
    all_or_none = bool(body.get("allOrNone", False))
    org = api.org
    mark = org.savepoint()
    results: list[dict[str, Any]] = []
    bodies: dict[str, Any] = {}
    failed_at: int | None = None
    for index, sub in enumerate(subs):
        if failed_at is not None:
            results.append(_halted(sub))
            continue
        reply = _run_sub(api, sub, bodies)
        ref = str(sub.get("referenceId", "")) if isinstance(sub, dict) else ""
        results.append({"body": reply.body, "httpHeaders": reply.headers,
                        "httpStatusCode": reply.status, "referenceId": ref})
        if reply.status < 300:
            bodies[ref] = reply.body
        elif all_or_none:
            failed_at = index
    if failed_at is not None:
        org.rollback_to(mark)
        for index in range(failed_at):
            results[index] = _halted(subs[index])
    else:
        org.release(mark)
    return Reply(200, {"compositeResponse": results})


def _halted(sub: Any) -> dict[str, Any]:
    """A subrequest undone or skipped because another one failed under allOrNone."""
    ref = str(sub.get("referenceId", "")) if isinstance(sub, dict) else ""
    return {"body": [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled "
                      "back since another operation in the same transaction failed."}],
            "httpHeaders": {}, "httpStatusCode": 400, "referenceId": ref}


def _run_sub(api: SalesforceApi, sub: Any, bodies: dict[str, Any]) -> Reply:
    if not isinstance(sub, dict):
        return Reply(400, [{"errorCode": "JSON_PARSER_ERROR",
                            "message": "each subrequest must be an object"}])
    ref = str(sub.get("referenceId", ""))
    try:
        url = _resolve_refs(str(sub.get("url", "")), bodies)
        sub_body = _resolve_refs(sub.get("body"), bodies)
    except _Unresolved as error:
        return Reply(400, [{"errorCode": "PROCESSING_HALTED", "message":
                            f"Invalid reference specified. No value for {error.expression} "
                            f"found in {ref}. Provided referenceId ({ref}) is not valid."}])
    if len(url.encode("utf-8")) > MAX_SUBREQUEST_URL_BYTES:
        # Undocumented for subrequests; modelled as the plain request's URI limit (harsher)
        return Reply(414, [{"errorCode": "URI_TOO_LONG", "message": "The subrequest url "
                            "exceeds 16,384 bytes: split the query"}])
    method = str(sub.get("method", "GET")).upper()
    matched = _match_route(method, url)
    if matched is None:
        return Reply(404, [{"errorCode": "NOT_FOUND",
                            "message": "The requested resource does not exist"}])
    route, params = matched
    parts = urlsplit(url)
    headers = {k.lower(): str(v) for k, v in (sub.get("httpHeaders") or {}).items()}
    request = SfRequest(method, parts.path, params, dict(parse_qsl(parts.query)), headers,
                        json.dumps(sub_body).encode() if sub_body is not None else b"")
    return api.run(route, request)


def _match_route(method: str, url: str) -> tuple[Route, dict[str, str]] | None:
    path = urlsplit(url).path
    prefix = re.match(r"^/services/data/(v[^/]+)(/.*)?$", path)
    if prefix is None:
        return None
    rest = prefix.group(2) or "/"
    for route in ROUTES:
        if route.handler is h_composite or method.upper() not in route.methods:
            continue
        match = route.regex.match(rest)
        if match:
            return route, {"version": prefix.group(1), **{k: unquote(v) for k, v in
                                                           match.groupdict().items()}}
    return None


ROUTES: list[Route] = [
    Route(("GET",), "/", h_resources),
    Route(("GET",), "/sobjects", h_describe_global),
    Route(("GET",), "/limits", h_limits),
    Route(("GET",), "/query", h_query, heavy=True),
    Route(("GET",), "/queryAll", h_query, heavy=True),
    Route(("GET",), "/query/{locator}", h_query_more, heavy=True),
    Route(("GET",), "/queryAll/{locator}", h_query_more, heavy=True),
    Route(("POST",), "/composite", h_composite),
    Route(("POST", "PATCH", "DELETE", "GET"), "/composite/sobjects", h_collection, heavy=True),
    Route(("PATCH",), "/composite/sobjects/{sobject}/{field}", h_collection_upsert,
          heavy=True),
    Route(("GET", "POST"), "/composite/sobjects/{sobject}", h_collection_retrieve, heavy=True),
    Route(("GET", "POST"), "/sobjects/{sobject}", h_sobject),
    Route(("GET",), "/sobjects/{sobject}/describe", h_describe),
    Route(("GET",), "/sobjects/{sobject}/updated", h_updated),
    Route(("GET",), "/sobjects/{sobject}/deleted", h_deleted),
    Route(("GET", "PATCH", "DELETE"), "/sobjects/{sobject}/{record_id}", h_record),
    Route(("GET", "PATCH", "DELETE"), "/sobjects/{sobject}/{field}/{value}",
          h_by_external_id),
]


def allowed_methods(rest: str) -> list[str]:
    """Methods of every route whose template matches the path (for 405 answers)."""
    methods: list[str] = []
    for route in ROUTES:
        if route.regex.match(rest):
            methods.extend(m for m in route.methods if m not in methods)
    return methods
