"""Salesforce writes: sObject Collections, at most COLLECTION_MAX records a call.

Creates that carry an idempotency key go as upserts on the object's external-id field, so a
create retried after a timeout whose request did land updates instead of making a second
record. Optional-feature fields the user cannot write are left out before sending (their
feature is off and reported); records refused for some fields only are sent again at once
without them (isolate.py). Results come back one per item, in input order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from connectors.base import WriteItem, WriteOperation, WriteRef, WriteResult
from connectors.salesforce import errors, isolate, streams
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.limits import COLLECTION_MAX
from connectors.salesforce.schema_cache import FEATURES, SchemaCache
from syncagent.errors import ConfigError, FatalError, RetryableError, SyncAgentError


class CollectionWriter:
    """Writes batches of any size through sObject Collections."""

    def __init__(self, client: SalesforceClient, schema: SchemaCache) -> None:
        self.client = client
        self.schema = schema

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
        records = [_record(obj, operation, item, ext_field) for item in chunk]
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


def _record(obj: str, operation: WriteOperation, item: WriteItem,
            ext_field: str | None) -> dict[str, Any]:
    """One item as a Collections record: its type, fields, and the id or key it goes by."""
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
    return record


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
    return WriteResult(ref=ref, status=errors.record_status(code),
                       id=item.get("id"), code=code, message=message,
                       field_errors=isolate.field_errors(errs))
