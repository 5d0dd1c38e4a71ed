"""FastAPI router of the HubSpot emulator: CRM v3 paths as hubspot-api-client 12.x calls them.

Handlers parse JSON themselves so malformed input gets HubSpot's 400 body (not FastAPI's
422), take ``ctx.lock`` while touching the portal, and turn :class:`HubSpotError` into
``{status: "error", message, correlationId, category}``. Auth and rate limits are applied
by the sandbox middleware before a request gets here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from syncagent.sandbox.hubspot import groups
from syncagent.sandbox.hubspot.batch import refuse_batch
from syncagent.sandbox.hubspot.events import API_EVENT_TYPES, events_page
from syncagent.sandbox.hubspot.portal import (
    HsRecord,
    HubSpotContext,
    HubSpotError,
    HubSpotPortal,
    created_property,
    modified_property,
    property_error,
)
from syncagent.sandbox.hubspot.properties import (
    ASSOCIATION_TYPE_IDS,
    OBJECT_TYPE_IDS,
    SINGULAR,
    PropertyDef,
    iso_ms,
)
from syncagent.sandbox.hubspot.search_index import search_store

BATCH_LIMIT = 100
# v4 (and v3) association batch reads: at most 1,000 ids a request since 2025-02-10
# (developers.hubspot.com/changelog/bug-fix-batch-read-limit-for-hubspot-associations-api).
ASSOCIATION_READ_LIMIT = 1000
LIST_PAGE_MAX = 100
_TYPE_ALIASES = {**{v: k for k, v in OBJECT_TYPE_IDS.items()},
                 **{v: k for k, v in SINGULAR.items()}, **{k: k for k in OBJECT_TYPE_IDS}}
_DEFAULT_PROPERTIES = {"contacts": ["createdate", "email", "firstname", "hs_object_id",
                                    "lastmodifieddate", "lastname"]}


def error_response(error: HubSpotError) -> JSONResponse:
    body: dict[str, Any] = {"status": "error", "message": error.message,
                            "correlationId": str(uuid.uuid4()), "category": error.category}
    body.update(error.extra)
    return JSONResponse(body, status_code=error.status)


def object_type_of(raw: str) -> str:
    kind = _TYPE_ALIASES.get(raw.lower())
    if kind is None:
        raise HubSpotError(400, f"Unable to infer object type from: {raw}", "VALIDATION_ERROR")
    return kind


def _int_param(raw: Any, name: str, default: int) -> int:
    """An integer query/body parameter; junk is HubSpot's 400, not a server error."""
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise HubSpotError(400, f"{name} must be an integer, got {raw!r}") from None


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _multi(request: Request, name: str) -> list[str] | None:
    """`properties=a&properties=b` (the SDK) or `properties=a,b` (curl) -> [a, b]."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    return [part for value in values for part in value.split(",") if part]


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise HubSpotError(400, "Invalid input JSON on line 1: the body is not valid JSON",
                           "VALIDATION_ERROR") from None


async def _json_object(request: Request) -> dict[str, Any]:
    body = await _json(request)
    if not isinstance(body, dict):
        raise HubSpotError(400, "Invalid input JSON: expected an object")
    return body


def record_json(portal: HubSpotPortal, object_type: str, record: HsRecord,
                properties: list[str] | None = None,
                associations: list[str] | None = None) -> dict[str, Any]:
    """A record as SimplePublicObject JSON: requested properties (null when unset) + basics."""
    defs = portal.properties[object_type]
    always = ["hs_object_id", created_property(object_type), modified_property(object_type)]
    names = properties if properties is not None else _DEFAULT_PROPERTIES.get(object_type,
                                                                               always)
    out = {name: record.properties.get(name) for name in [*names, *always] if name in defs}
    body: dict[str, Any] = {"id": str(record.id), "properties": out,
                            "createdAt": iso_ms(record.created_at),
                            "updatedAt": iso_ms(record.updated_at),
                            "archived": record.archived}
    if record.archived and record.archived_at is not None:
        body["archivedAt"] = iso_ms(record.archived_at)
    if associations:
        assoc: dict[str, Any] = {}
        for raw in associations:
            to_type = _TYPE_ALIASES.get(raw.lower())
            if to_type is None:
                continue
            ids = sorted(record.associations.get(to_type, set()))
            if ids:
                label = f"{SINGULAR[object_type]}_to_{SINGULAR[to_type]}"
                assoc[to_type] = {"results": [{"id": str(i), "type": label} for i in ids]}
        if assoc:
            body["associations"] = assoc
    return body


def _now_iso(portal: HubSpotPortal) -> str:
    return iso_ms(portal.clock.now())


def _batch_body(portal: HubSpotPortal, started: str, results: list[dict[str, Any]],
                errors: list[dict[str, Any]], ok_status: int) -> JSONResponse:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                            "completedAt": _now_iso(portal)}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return JSONResponse(body, status_code=207)
    return JSONResponse(body, status_code=ok_status)


def _record_error(category: str, message: str, ids: list[str], **context: list[str],
                  ) -> dict[str, Any]:
    return {"status": "error", "category": category, "message": message,
            "context": {"ids": ids, **context}}


def _inputs(body: Any, limit: int = BATCH_LIMIT) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise HubSpotError(400, "Invalid input JSON: 'inputs' must be a list",
                           "VALIDATION_ERROR")
    inputs = body["inputs"]
    if len(inputs) > limit:
        raise HubSpotError(400, f"Batch input size of {len(inputs)} exceeds the limit of "
                           f"{limit} inputs", "VALIDATION_ERROR")
    if not all(isinstance(item, dict) and isinstance(item.get("properties") or {}, dict)
               for item in inputs):
        raise HubSpotError(400, "Invalid input JSON: every input must be an object whose "
                           "'properties' is an object", "VALIDATION_ERROR")
    return inputs


def _assoc_input(raw: Any, kind: str) -> dict[str, set[int]]:
    """`associations: [{to: {id}, types: [{associationCategory, associationTypeId}]}]`.

    Engagements name contacts; the target type is inferred from the type id (contacts). As in
    HubSpot, an input without a type, or with a type that does not link this object to a
    contact, is refused (the type decides what the id means)."""
    links: dict[str, set[int]] = {}
    expected = ASSOCIATION_TYPE_IDS.get(kind, (None,))[0]
    for item in raw or []:
        target = str((item.get("to") or {}).get("id", ""))
        if not target.isdigit():
            raise HubSpotError(400, f"Invalid association target id {target!r}",
                               "VALIDATION_ERROR")
        types = [str(t.get("associationTypeId")) for t in item.get("types") or []
                 if isinstance(t, dict)]
        if not types or any(t != str(expected) for t in types):
            raise HubSpotError(400, f"Invalid association types {types} from {kind} to "
                               f"contacts; use associationTypeId {expected} (HUBSPOT_DEFINED)",
                               "VALIDATION_ERROR")
        links.setdefault("contacts", set()).add(int(target))
    return links


def _rejected_by_fault(ctx: HubSpotContext, properties: dict[str, Any]) -> dict[str, Any] | None:
    """A per-record validation failure drawn from the fault profile (rate_reject)."""
    if not ctx.faults.reject_record("hubspot"):
        return None
    name = next(iter(properties), "email")
    message = f"{properties.get(name)!s} is not a valid value for property {name}."
    return {"isValid": False, "message": message, "error": "INVALID_VALUE", "name": name,
            "localizedErrorMessage": message}


class HubSpotRoutes:
    """The handlers; one instance per router, reading ctx.hs at each call (reset swaps it)."""

    def __init__(self, ctx: HubSpotContext) -> None:
        self.ctx = ctx

    @property
    def hs(self) -> HubSpotPortal:
        return self.ctx.hs

    def locked(self, work: Callable[[], Response | dict[str, Any]], status: int = 200,
               ) -> Response:
        try:
            with self.ctx.lock:
                result = work()
        except HubSpotError as error:
            return error_response(error)
        if isinstance(result, Response):
            return result
        return JSONResponse(result, status_code=status)

    # ----- basic ---------------------------------------------------------------------------
    async def list_page(self, object_type: str, request: Request) -> Response:
        try:
            kind = object_type_of(object_type)
            limit = _int_param(request.query_params.get("limit"), "limit", 10)
        except HubSpotError as error:
            return error_response(error)
        after = request.query_params.get("after", "0")
        archived = _flag(request, "archived")
        props, assoc = _multi(request, "properties"), _multi(request, "associations")

        def work() -> dict[str, Any]:
            if not 1 <= limit <= LIST_PAGE_MAX:
                raise HubSpotError(400, f"limit must be between 1 and {LIST_PAGE_MAX}")
            start = int(after) if after.isdigit() else 0
            ordered = sorted(rid for rid, r in self.hs.store(kind).records.items()
                             if r.archived == archived and rid >= start)
            page = ordered[:limit]
            body: dict[str, Any] = {"results": [
                record_json(self.hs, kind, self.hs.store(kind).records[rid], props, assoc)
                for rid in page]}
            if len(ordered) > limit:
                nxt = str(ordered[limit])
                body["paging"] = {"next": {"after": nxt, "link": f"{self.ctx.base_url}/crm/v3/"
                                           f"objects/{kind}?after={nxt}"}}
            return body
        return self.locked(work)

    async def create(self, object_type: str, request: Request) -> Response:
        try:
            kind = object_type_of(object_type)
            body = await _json_object(request)
        except HubSpotError as error:
            return error_response(error)

        def work() -> dict[str, Any]:
            properties = body.get("properties") or {}
            rejected = _rejected_by_fault(self.ctx, properties)
            if rejected:
                raise property_error([rejected])
            record = self.hs.create(kind, properties,
                                    associations=_assoc_input(body.get("associations"), kind))
            self.ctx.count_written(kind, 1)
            if kind == "tasks":
                self.ctx.count_tasks("hubspot", 1)
            return record_json(self.hs, kind, record, list(properties))
        return self.locked(work, status=201)

    def _resolve(self, kind: str, raw_id: str, id_property: str | None,
                 archived: bool = False) -> HsRecord | None:
        if id_property and id_property != "hs_object_id":
            return self.hs.find_by(kind, id_property, raw_id)
        if not raw_id.isdigit():
            return None
        return self.hs.get(kind, int(raw_id), archived=archived)

    async def read(self, object_type: str, record_id: str, request: Request) -> Response:
        try:
            kind = object_type_of(object_type)
        except HubSpotError as error:
            return error_response(error)
        props, assoc = _multi(request, "properties"), _multi(request, "associations")
        id_property = request.query_params.get("idProperty")
        archived = _flag(request, "archived")

        def work() -> dict[str, Any]:
            record = self._resolve(kind, record_id, id_property, archived)
            if record is None:
                raise HubSpotError(404, "resource not found", "OBJECT_NOT_FOUND")
            return record_json(self.hs, kind, record, props, assoc)
        return self.locked(work)

    async def update(self, object_type: str, record_id: str, request: Request) -> Response:
        try:
            kind = object_type_of(object_type)
            body = await _json_object(request)
        except HubSpotError as error:
            return error_response(error)
        id_property = request.query_params.get("idProperty")

        def work() -> dict[str, Any]:
            record = self._resolve(kind, record_id, id_property)
            if record is None:
                raise HubSpotError(404, "resource not found", "OBJECT_NOT_FOUND")
            properties = body.get("properties") or {}
            rejected = _rejected_by_fault(self.ctx, properties)
            if rejected:
                raise property_error([rejected])
            updated = self.hs.update(kind, record.id, properties)
            self.ctx.count_written(kind, 1)
            return record_json(self.hs, kind, updated, list(properties))
        return self.locked(work)

    async def archive(self, object_type: str, record_id: str) -> Response:
        def work() -> Response:
            kind = object_type_of(object_type)
            if record_id.isdigit() and self.hs.archive(kind, int(record_id)):
                self.ctx.count_written(kind, 1)
            return Response(status_code=204)   # HubSpot answers 204 even for unknown ids
        return self.locked(work)

    # ----- search ------------------------------------------------------------------------
    async def search(self, object_type: str, request: Request) -> Response:
        try:
            kind = object_type_of(object_type)
            body = await _json(request)
        except HubSpotError as error:
            return error_response(error)

        def work() -> dict[str, Any]:
            if not isinstance(body, dict):
                raise HubSpotError(400, "Invalid input JSON: expected an object")
            defs = self.hs.property_defs(kind)
            delay = self.ctx.faults.profile.hubspot_search_delay_seconds
            # the search index lags behind writes: records modified since the horizon are out
            horizon = (self.hs.clock.now().timestamp() - delay) * 1000 if delay > 0 else None
            total, page, next_after = search_store(self.hs.store(kind), defs, body, horizon)
            props = body.get("properties")
            result: dict[str, Any] = {"total": total, "results": [
                record_json(self.hs, kind, r, props if isinstance(props, list) else None)
                for r in page]}
            if next_after is not None:
                result["paging"] = {"next": {"after": str(next_after)}}
            return result
        return self.locked(work)

    # ----- batch -------------------------------------------------------------------------
    async def batch(self, object_type: str, action: str, request: Request) -> Response:
        try:
            kind = object_type_of(object_type)
            body = await _json(request)
            inputs = _inputs(body)
        except HubSpotError as error:
            return error_response(error)
        handler = {"read": self._batch_read, "create": self._batch_create,
                   "update": self._batch_update, "upsert": self._batch_upsert,
                   "archive": self._batch_archive}.get(action)
        if handler is None:
            return error_response(HubSpotError(404, f"Unknown batch action {action}",
                                               "OBJECT_NOT_FOUND"))
        archived = _flag(request, "archived")

        def work() -> Response:
            try:
                refuse_batch(self.hs, kind, action, inputs)
            except HubSpotError:
                if (kind, action) == ("tasks", "create"):
                    self.ctx.count_tasks("hubspot", 0)   # a task call, though none was made
                raise
            return handler(kind, body, inputs, archived)
        return self.locked(work)

    def _batch_read(self, kind: str, body: dict[str, Any], inputs: list[dict[str, Any]],
                    archived: bool) -> Response:
        started = _now_iso(self.hs)
        id_property = body.get("idProperty")
        props = body.get("properties") or None
        results, missing = [], []
        for item in inputs:
            raw = str(item.get("id", ""))
            record = self._resolve(kind, raw, id_property, archived)
            if record is None:
                missing.append(raw)
            else:
                results.append(record_json(self.hs, kind, record, props))
        errors = []
        if missing:
            errors.append(_record_error(
                "OBJECT_NOT_FOUND", f"Could not get some {SINGULAR[kind].upper()} objects, "
                "they may be deleted or not exist. Check that ids are valid.", missing))
        return _batch_body(self.hs, started, results, errors, 200)

    def _validation(self, kind: str, properties: dict[str, Any],
                    ) -> list[dict[str, Any]]:
        _, errors = self.hs.validate(kind, properties)
        if not errors:
            rejected = _rejected_by_fault(self.ctx, properties)
            errors = [rejected] if rejected else []
        return errors

    @staticmethod
    def _validation_error(errors: list[dict[str, Any]], ids: list[str]) -> dict[str, Any]:
        return _record_error("VALIDATION_ERROR", "Property values were not valid: "
                             + json.dumps(errors), ids,
                             propertyName=[e["name"] for e in errors])

    def _batch_create(self, kind: str, body: dict[str, Any], inputs: list[dict[str, Any]],
                      archived: bool) -> Response:
        started = _now_iso(self.hs)
        results, errors = [], []
        for index, item in enumerate(inputs):
            properties = item.get("properties") or {}
            trace = str(item.get("objectWriteTraceId") or properties.get("email") or index)
            problems = self._validation(kind, properties)
            if problems:
                errors.append(self._validation_error(problems, [trace]))
                continue
            try:
                record = self.hs.create(kind, properties, associations=_assoc_input(
                    item.get("associations"), kind))
            except HubSpotError as error:
                errors.append(_record_error(error.category, error.message, [trace]))
                continue
            answer = record_json(self.hs, kind, record, list(properties))
            if item.get("objectWriteTraceId"):   # echoed, as SimplePublicObject carries it
                answer["objectWriteTraceId"] = str(item["objectWriteTraceId"])
            results.append(answer)
        self.ctx.count_written(kind, len(results))
        if kind == "tasks":
            self.ctx.count_tasks("hubspot", len(results))
        return _batch_body(self.hs, started, results, errors, 201)

    def _batch_update(self, kind: str, body: dict[str, Any], inputs: list[dict[str, Any]],
                      archived: bool) -> Response:
        started = _now_iso(self.hs)
        ids = [str(item.get("id", "")) for item in inputs]
        if len(set(ids)) != len(ids):
            raise HubSpotError(400, "Duplicate IDs found in batch input: "
                               f"{sorted({i for i in ids if ids.count(i) > 1})}. IDs must be "
                               "unique", "VALIDATION_ERROR")
        results, errors, missing = [], [], []
        for item, raw in zip(inputs, ids, strict=True):
            record = self._resolve(kind, raw, item.get("idProperty"))
            if record is None:
                missing.append(raw)
                continue
            properties = item.get("properties") or {}
            problems = self._validation(kind, properties)
            if problems:
                errors.append(self._validation_error(problems, [raw]))
                continue
            try:
                updated = self.hs.update(kind, record.id, properties)
            except HubSpotError as error:
                errors.append(_record_error(error.category, error.message, [raw]))
                continue
            results.append(record_json(self.hs, kind, updated, list(properties)))
        if missing:
            errors.append(_record_error(
                "OBJECT_NOT_FOUND", f"Could not get some {SINGULAR[kind].upper()} objects, "
                "they may be deleted or not exist. Check that ids are valid.", missing))
        self.ctx.count_written(kind, len(results))
        return _batch_body(self.hs, started, results, errors, 200)

    def _batch_upsert(self, kind: str, body: dict[str, Any], inputs: list[dict[str, Any]],
                      archived: bool) -> Response:
        started = _now_iso(self.hs)
        results, errors = [], []
        for item in inputs:
            raw = str(item.get("id", ""))
            id_property = item.get("idProperty") or "hs_object_id"
            properties = dict(item.get("properties") or {})
            problems = self._validation(kind, properties)
            if problems:
                errors.append(self._validation_error(problems, [raw]))
                continue
            try:
                record = self.hs.find_by(kind, id_property, raw)
                if record is None:
                    if id_property == "hs_object_id":
                        raise HubSpotError(404, f"No {SINGULAR[kind]} with id {raw} to "
                                           "update", "OBJECT_NOT_FOUND")
                    properties[id_property] = raw
                    record, new = self.hs.create(kind, properties), True
                else:
                    record, new = self.hs.update(kind, record.id, properties), False
            except HubSpotError as error:
                errors.append(_record_error(error.category, error.message, [raw]))
                continue
            results.append({**record_json(self.hs, kind, record, list(properties)), "new": new})
        self.ctx.count_written(kind, len(results))
        return _batch_body(self.hs, started, results, errors, 200)

    def _batch_archive(self, kind: str, body: dict[str, Any], inputs: list[dict[str, Any]],
                       archived: bool) -> Response:
        done = sum(1 for item in inputs if str(item.get("id", "")).isdigit()
                   and self.hs.archive(kind, int(item["id"])))
        self.ctx.count_written(kind, done)
        return Response(status_code=204)

    async def merge(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
        except HubSpotError as error:
            return error_response(error)

        def work() -> dict[str, Any]:
            primary, other = str(body.get("primaryObjectId", "")), str(
                body.get("objectIdToMerge", ""))
            if not (primary.isdigit() and other.isdigit()):
                raise HubSpotError(400, "primaryObjectId and objectIdToMerge must be ids")
            record = self.hs.merge(int(primary), int(other))
            self.ctx.count_written("contacts", 1)
            return record_json(self.hs, "contacts", record, ["hs_merged_object_ids"])
        return self.locked(work)

    # ----- properties ----------------------------------------------------------------------
    async def properties_list(self, object_type: str) -> Response:
        return self.locked(lambda: {"results": [
            p.as_json() for p in self.hs.property_defs(object_type_of(object_type)).values()]})

    async def property_read(self, object_type: str, name: str) -> Response:
        def work() -> dict[str, Any]:
            prop = self.hs.property_defs(object_type_of(object_type)).get(name)
            if prop is None:
                raise HubSpotError(404, f"Property {name} does not exist", "OBJECT_NOT_FOUND")
            return prop.as_json()
        return self.locked(work)

    async def property_create(self, object_type: str, request: Request) -> Response:
        try:
            body = await _json_object(request)
        except HubSpotError as error:
            return error_response(error)

        def work() -> dict[str, Any]:
            kind = object_type_of(object_type)
            defs = self.hs.property_defs(kind)
            prop = property_from_body(body)
            groups.require_group(self.hs, kind, prop.group_name)
            if prop.name in defs:
                raise HubSpotError(409, f"Property named '{prop.name}' already exists.",
                                   "OBJECT_ALREADY_EXISTS")
            defs[prop.name] = prop
            return prop.as_json()
        return self.locked(work, status=201)

    async def property_update(self, object_type: str, name: str, request: Request) -> Response:
        try:
            body = await _json_object(request)
        except HubSpotError as error:
            return error_response(error)

        def work() -> dict[str, Any]:
            prop = self.hs.property_defs(object_type_of(object_type)).get(name)
            if prop is None:
                raise HubSpotError(404, f"Property {name} does not exist", "OBJECT_NOT_FOUND")
            if prop.hubspot_defined and prop.read_only:
                raise HubSpotError(400, f"Property {name} is read-only and cannot be changed")
            if "label" in body:
                prop.label = str(body["label"])
            if "options" in body:
                prop.options = [str(o["value"]) for o in body["options"] or []]
            return prop.as_json()
        return self.locked(work)

    async def groups_list(self, object_type: str) -> Response:
        return self.locked(lambda: groups.list_groups(self.hs, object_type_of(object_type)))

    async def group_read(self, object_type: str, name: str) -> Response:
        return self.locked(lambda: groups.read_group(self.hs, object_type_of(object_type),
                                                     name))

    async def group_create(self, object_type: str, request: Request) -> Response:
        try:
            body = await _json_object(request)
        except HubSpotError as error:
            return error_response(error)
        return self.locked(lambda: groups.create_group(self.hs, object_type_of(object_type),
                                                       body), status=201)

    # ----- owners ----------------------------------------------------------------------------
    async def owners(self, request: Request) -> Response:
        email = request.query_params.get("email")
        after = request.query_params.get("after", "0")
        archived = _flag(request, "archived")
        raw_limit = request.query_params.get("limit")

        def work() -> dict[str, Any]:
            limit = _int_param(raw_limit, "limit", 100)
            if not 1 <= limit <= 500:
                raise HubSpotError(400, "limit must be between 1 and 500")
            owners = [o for o in sorted(self.hs.owners.values(), key=lambda o: o.id)
                      if o.archived == archived and (not email or o.email.lower()
                                                     == email.lower())]
            start = int(after) if after.isdigit() else 0
            page = owners[start:start + limit]
            body: dict[str, Any] = {"results": [o.as_json() for o in page]}
            if start + limit < len(owners):
                nxt = str(start + limit)
                body["paging"] = {"next": {"after": nxt, "link": f"{self.ctx.base_url}/crm/v3/"
                                           f"owners/?after={nxt}"}}
            return body
        return self.locked(work)

    async def owner(self, owner_id: str, request: Request) -> Response:
        by_user = request.query_params.get("idProperty") == "userId"

        def work() -> dict[str, Any]:
            for owner in self.hs.owners.values():
                key = owner.user_id if by_user else owner.id
                if str(key) == owner_id:
                    return owner.as_json()
            raise HubSpotError(404, f"Owner {owner_id} not found", "OBJECT_NOT_FOUND")
        return self.locked(work)

    # ----- lists -----------------------------------------------------------------------------
    async def list_create(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
        except HubSpotError as error:
            return error_response(error)

        def work() -> dict[str, Any]:
            if not body.get("name") or body.get("objectTypeId") not in (None, "0-1"):
                raise HubSpotError(400, "A list needs a name and objectTypeId 0-1 (contacts)")
            return {"list": self.hs.create_list(str(body["name"]), str(
                body.get("processingType", "MANUAL"))).as_json()}
        return self.locked(work)

    async def list_read(self, list_id: str) -> Response:
        return self.locked(lambda: {"list": self.hs.get_list(_list_id(list_id)).as_json()})

    async def list_by_name(self, object_type_id: str, list_name: str) -> Response:
        def work() -> dict[str, Any]:
            for hs_list in self.hs.lists.values():
                # names match case-insensitively (lists v3 reference, get-by-name)
                if hs_list.name.lower() == list_name.lower() and \
                        hs_list.object_type_id == object_type_id:
                    return {"list": hs_list.as_json()}
            raise HubSpotError(404, f"List does not exist with name {list_name}.",
                               "OBJECT_NOT_FOUND")
        return self.locked(work)

    async def list_search(self, request: Request) -> Response:
        try:
            body = await _json_object(request)
        except HubSpotError as error:
            return error_response(error)

        def work() -> dict[str, Any]:
            query = str(body.get("query") or "").lower()
            offset = _int_param(body.get("offset"), "offset", 0)
            count = _int_param(body.get("count"), "count", 20)
            found = [lst for lst in sorted(self.hs.lists.values(), key=lambda x: x.list_id)
                     if query in lst.name.lower()]
            page = found[offset:offset + count]
            return {"lists": [lst.as_json() for lst in page], "offset": offset + len(page),
                    "hasMore": offset + count < len(found), "total": len(found)}
        return self.locked(work)

    async def membership_change(self, list_id: str, action: str, request: Request) -> Response:
        try:
            body = await _json(request)
        except HubSpotError as error:
            return error_response(error)

        def work() -> dict[str, Any]:
            lid = _list_id(list_id)
            if action == "add-and-remove":
                add = body.get("recordIdsToAdd") or []
                remove = body.get("recordIdsToRemove") or []
            elif not isinstance(body, list):
                raise HubSpotError(400, "The body must be a JSON array of record ids")
            else:
                add, remove = (body, []) if action == "add" else ([], body)
            result = self.hs.change_membership(lid, [str(x) for x in add],
                                               [str(x) for x in remove])
            self.ctx.count_written("list_memberships", len(result["recordIdsAdded"])
                                   + len(result["recordIdsRemoved"]))
            if action == "add":
                return {k: result[k] for k in ("recordIdsAdded", "recordsIdsAdded",
                                               "recordIdsMissing")}
            if action == "remove":
                return {k: result[k] for k in ("recordIdsRemoved", "recordIdsMissing")}
            return result
        return self.locked(work)

    async def memberships(self, list_id: str, request: Request) -> Response:
        after = request.query_params.get("after", "0")
        raw_limit = request.query_params.get("limit")

        def work() -> dict[str, Any]:
            limit = _int_param(raw_limit, "limit", 100)
            hs_list = self.hs.get_list(_list_id(list_id))
            ids = sorted(hs_list.members)
            start = int(after) if after.isdigit() else 0
            page = ids[start:start + min(limit, 250)]
            body: dict[str, Any] = {"total": len(ids), "results": [
                {"recordId": str(i), "membershipTimestamp": iso_ms(hs_list.members[i])}
                for i in page]}
            if start + len(page) < len(ids):
                body["paging"] = {"next": {"after": str(start + len(page))}}
            return body
        return self.locked(work)

    async def memberships_clear(self, list_id: str) -> Response:
        def work() -> Response:
            hs_list = self.hs.get_list(_list_id(list_id))
            if hs_list.processing_type == "DYNAMIC":
                raise HubSpotError(400, "DYNAMIC list memberships cannot be changed manually")
            hs_list.members.clear()
            return Response(status_code=204)
        return self.locked(work)

    # ----- associations (v4) -----------------------------------------------------------------
    def _associated(self, from_type: str, record: HsRecord, to_type: str) -> list[dict[str, Any]]:
        if from_type == "contacts" and to_type in ASSOCIATION_TYPE_IDS:
            type_id = ASSOCIATION_TYPE_IDS[to_type][1]
        elif to_type == "contacts" and from_type in ASSOCIATION_TYPE_IDS:
            type_id = ASSOCIATION_TYPE_IDS[from_type][0]
        else:
            type_id = 0
        return [{"toObjectId": other, "associationTypes": [
            {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]}
            for other in sorted(record.associations.get(to_type, set()))]

    async def associations_v4(self, object_type: str, object_id: str, to_object_type: str,
                              request: Request) -> Response:
        after, raw_limit = request.query_params.get("after"), request.query_params.get("limit")

        def work() -> dict[str, Any]:
            kind, to_kind = object_type_of(object_type), object_type_of(to_object_type)
            limit = _int_param(raw_limit, "limit", 500)
            record = self.hs.get(kind, int(object_id)) if object_id.isdigit() else None
            if record is None:
                raise HubSpotError(404, f"{SINGULAR[kind].upper()} {object_id} not found",
                                   "OBJECT_NOT_FOUND")
            links = self._associated(kind, record, to_kind)
            start = _int_param(after, "after", 0)
            body: dict[str, Any] = {"results": links[start:start + min(limit, 500)]}
            if start + min(limit, 500) < len(links):
                body["paging"] = {"next": {"after": str(start + min(limit, 500))}}
            return body
        return self.locked(work)

    async def associations_v4_batch_read(self, from_object_type: str, to_object_type: str,
                                         request: Request) -> Response:
        try:
            body = await _json(request)
            inputs = _inputs(body, ASSOCIATION_READ_LIMIT)
        except HubSpotError as error:
            return error_response(error)

        def work() -> Response:
            kind, to_kind = object_type_of(from_object_type), object_type_of(to_object_type)
            started = _now_iso(self.hs)
            results, errors = [], []
            for item in inputs:
                raw = str(item.get("id", ""))
                record = self.hs.get(kind, int(raw)) if raw.isdigit() else None
                links = self._associated(kind, record, to_kind) if record else []
                if links:
                    results.append({"from": {"id": raw}, "to": links})
                else:
                    errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                                   "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                                   "message": f"No {SINGULAR[to_kind]} is associated with "
                                              f"{SINGULAR[kind]} {raw}.",
                                   "context": {"fromObjectId": [raw], "ids": [raw]}})
            return _batch_body(self.hs, started, results, errors, 200)
        return self.locked(work)

    # ----- events ----------------------------------------------------------------------------
    async def events(self, request: Request) -> Response:
        q = request.query_params

        def work() -> dict[str, Any]:
            return events_page(self.ctx, q)
        return self.locked(work)


def _list_id(raw: str) -> int:
    if not raw.isdigit():
        raise HubSpotError(400, f"Invalid list id {raw!r}")
    return int(raw)


def property_from_body(body: Any) -> PropertyDef:
    """A new custom property from a POST body; HubSpot's required fields are checked."""
    if not isinstance(body, dict):
        raise HubSpotError(400, "Invalid input JSON: expected an object")
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        raise HubSpotError(400, f"Missing required fields: {', '.join(missing)}")
    types = {"string", "number", "date", "datetime", "enumeration", "bool"}
    if body["type"] not in types:
        raise HubSpotError(400, f"Invalid type {body['type']}; one of {sorted(types)}")
    options = [str(o.get("value")) for o in body.get("options") or []]
    if body["type"] == "enumeration" and not options and body["fieldType"] != "booleancheckbox":
        raise HubSpotError(400, "Enumeration properties need at least one option")
    return PropertyDef(name=str(body["name"]), label=str(body["label"]), type=body["type"],
                       field_type=str(body["fieldType"]), group_name=str(body["groupName"]),
                       options=options, hubspot_defined=False,
                       unique=bool(body.get("hasUniqueValue")),
                       description=str(body.get("description") or ""))


def make_router(ctx: HubSpotContext) -> APIRouter:
    """All HubSpot routes; both `/path` and `/path/` where the SDK uses a trailing slash."""
    routes = HubSpotRoutes(ctx)
    router = APIRouter()
    add = router.add_api_route
    base = "/crm/v3/objects/{object_type}"
    add(f"{base}/search", routes.search, methods=["POST"])
    add(f"{base}/batch/{{action}}", routes.batch, methods=["POST"])
    add("/crm/v3/objects/contacts/merge", routes.merge, methods=["POST"])
    add(base, routes.list_page, methods=["GET"])
    add(base, routes.create, methods=["POST"])
    add(f"{base}/{{record_id}}", routes.read, methods=["GET"])
    add(f"{base}/{{record_id}}", routes.update, methods=["PATCH"])
    add(f"{base}/{{record_id}}", routes.archive, methods=["DELETE"])
    props = "/crm/v3/properties/{object_type}"
    add(f"{props}/groups", routes.groups_list, methods=["GET"])      # before {name} routes
    add(f"{props}/groups", routes.group_create, methods=["POST"])
    add(f"{props}/groups/{{name}}", routes.group_read, methods=["GET"])
    add("/crm/v3/properties/{object_type}", routes.properties_list, methods=["GET"])
    add("/crm/v3/properties/{object_type}", routes.property_create, methods=["POST"])
    add("/crm/v3/properties/{object_type}/{name}", routes.property_read, methods=["GET"])
    add("/crm/v3/properties/{object_type}/{name}", routes.property_update, methods=["PATCH"])
    for slash in ("", "/"):
        add(f"/crm/v3/owners{slash}", routes.owners, methods=["GET"])
        add(f"/crm/v3/lists{slash}", routes.list_create, methods=["POST"])
        add(f"/events/v3/events{slash}", routes.events, methods=["GET"])
    add("/crm/v3/owners/{owner_id}", routes.owner, methods=["GET"])
    add("/crm/v3/lists/search", routes.list_search, methods=["POST"])
    add("/crm/v3/lists/object-type-id/{object_type_id}/name/{list_name}", routes.list_by_name,
        methods=["GET"])
    add("/crm/v3/lists/{list_id}", routes.list_read, methods=["GET"])
    add("/crm/v3/lists/{list_id}/memberships", routes.memberships, methods=["GET"])
    add("/crm/v3/lists/{list_id}/memberships", routes.memberships_clear, methods=["DELETE"])
    add("/crm/v3/lists/{list_id}/memberships/{action}", routes.membership_change,
        methods=["PUT"])
    add("/crm/v4/objects/{object_type}/{object_id}/associations/{to_object_type}",
        routes.associations_v4, methods=["GET"])
    add("/crm/v4/associations/{from_object_type}/{to_object_type}/batch/read",
        routes.associations_v4_batch_read, methods=["POST"])
    add("/events/v3/events/event-types", lambda: {"eventTypes": list(API_EVENT_TYPES)},
        methods=["GET"])
    return router
