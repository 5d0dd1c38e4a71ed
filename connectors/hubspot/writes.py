"""HubSpot writes: batches of at most 100, each result mapped to its item, bad inputs isolated.

Real HubSpot commonly refuses a whole batch (400 ``VALIDATION_ERROR``, or 409 ``CONFLICT`` on a
create) for one bad input: an invalid e-mail, a value that is not an allowed option, a property
that does not exist (API-FACTS.md, "Where real orgs are stricter"). Sending the batch again
would fail again, and dead-lettering the whole batch would lose 99 good writes for one bad one.
So the bad inputs are isolated:

- when the answer names them (``errors[].context.ids``), they become dead letters with their
  code and the others are sent again, once;
- otherwise the batch is halved and each half sent; a half that lands is done, a half that is
  refused is halved again. One bad input in 100 costs at most 1 + 2·⌈log₂ 100⌉ = 15 calls.

A 207 Multi-Status answer is mapped per record by ``context.ids``, never by position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from connectors.base import WriteItem, WriteOperation, WriteRef, WriteResult
from connectors.hubspot import errors, streams
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.limits import BATCH_MAX
from syncagent.errors import ConfigError, RetryableError, SyncAgentError

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


class BatchWriter:
    """Batch create/update/upsert with isolation; ``batch_calls`` counts the calls made."""

    def __init__(self, client: HubSpotClient,
                 on_written: Callable[[str, Iterable[Any]], None] | None = None) -> None:
        self.client = client
        # told each batch's ``updatedAt`` values (the connector skips its own writes on reads)
        self.on_written = on_written
        self.batch_calls = 0
        self.isolated = 0          # inputs dead-lettered out of refused batches
        self.resend_unknown = True

    def write(self, obj: str, operation: WriteOperation, batch: Sequence[WriteItem], *,
              resend_unknown: bool = True) -> list[WriteResult]:
        """``resend_unknown=False``: a batch whose outcome is unknown (timeout, 5xx) comes
        back as retryable results instead of being sent again (tasks.py looks it up)."""
        results: list[WriteResult] = []
        self.resend_unknown = resend_unknown
        try:
            for i in range(0, len(batch), BATCH_MAX):
                chunk = list(batch[i:i + BATCH_MAX])
                results.extend(self._with_clears(obj, operation, chunk))
        finally:
            self.resend_unknown = True
        return results

    def _with_clears(self, obj: str, operation: WriteOperation,
                     chunk: list[WriteItem]) -> list[WriteResult]:
        """Blank the fields items ask to clear first (one batch), then write the chunk; an
        item whose clear failed is not written and carries that failure."""
        clearing = [(n, item) for n, item in enumerate(chunk) if item.clear_first and item.id]
        failed: dict[int, WriteResult] = {}
        if clearing and operation == "update":
            blanks = [WriteItem(fields={f: "" for f in item.clear_first}, id=item.id)
                      for _, item in clearing]
            for (n, _), result in zip(clearing, self._send(obj, "update", blanks),
                                      strict=True):
                if not result.ok:
                    failed[n] = result
        rest = [item for n, item in enumerate(chunk) if n not in failed]
        written = iter(self._send(obj, operation, rest) if rest else [])
        return [failed[n] if n in failed else next(written) for n in range(len(chunk))]

    def _send(self, obj: str, operation: WriteOperation,
              chunk: list[WriteItem]) -> list[WriteResult]:
        """One batch call; a refused batch is isolated (see the module docstring)."""
        inputs, keys, id_property = batch_inputs(obj, operation, chunk)
        refs = [WriteRef(obj, item.id, item.key) for item in chunk]
        self.batch_calls += 1
        try:
            data = self.client.batch(obj, operation, inputs,
                                     resend_unknown=self.resend_unknown)
        except RetryableError as exc:
            return [_retryable(ref, exc) for ref in refs]
        except errors.Refused as exc:
            return self._isolate(obj, operation, chunk, keys, exc)
        if self.on_written is not None:
            self.on_written(obj, (row.get("updatedAt") for row in data.get("results") or []))
        return map_results(operation, chunk, refs, keys, data, id_property)

    def _isolate(self, obj: str, operation: WriteOperation, chunk: list[WriteItem],
                 keys: list[str], exc: errors.Refused) -> list[WriteResult]:
        if len(chunk) == 1:
            self.isolated += 1
            return [_refused(obj, operation, chunk[0], keys[0], exc)]
        named = exc.named_ids() & set(keys)
        if named:
            out: dict[int, WriteResult] = {}
            good = [n for n, key in enumerate(keys) if key not in named]
            for n, key in enumerate(keys):
                if key in named:
                    self.isolated += 1
                    out[n] = _refused(obj, operation, chunk[n], key, exc)
            retried = self._send(obj, operation, [chunk[n] for n in good]) if good else []
            out.update(zip(good, retried, strict=True))
            return [out[n] for n in range(len(chunk))]
        half = len(chunk) // 2
        return (self._send(obj, operation, chunk[:half])
                + self._send(obj, operation, chunk[half:]))


def batch_inputs(obj: str, operation: WriteOperation, chunk: list[WriteItem]
                 ) -> tuple[list[dict[str, Any]], list[str], str]:
    """The batch body's inputs, the key each result is found by, and the id property."""
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
            # the id property is written too (same value) so the answer names it and each
            # result can be matched to its item
            props = {**item.fields, id_property: item.key} \
                if id_property != "hs_object_id" else item.fields
            inputs.append({"id": item.key, "idProperty": id_property, "properties": props})
            keys.append(item.key)
        else:
            trace = item.key or f"item-{n}"
            inputs.append({"properties": item.fields, "objectWriteTraceId": trace,
                           **association_inputs(obj, item.associations)})
            keys.append(trace)
    return inputs, keys, id_property


def association_inputs(obj: str, links: Mapping[str, str]) -> dict[str, Any]:
    """A create's ``associations`` (HubSpot-defined types), e.g. a task to its contact."""
    if not links:
        return {}
    out = []
    for to_object, record_id in links.items():
        type_id = streams.ASSOCIATION_TYPE_IDS.get((obj, to_object))
        if type_id is None:
            raise ConfigError(f"hubspot has no association type from {obj} to {to_object}",
                              hint="Known: " + ", ".join(
                                  f"{a}->{b}" for a, b in streams.ASSOCIATION_TYPE_IDS))
        out.append({"to": {"id": str(record_id)}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]})
    return {"associations": out}


def map_results(operation: str, chunk: list[WriteItem], refs: list[WriteRef],
                keys: list[str], data: Mapping[str, Any], id_property: str
                ) -> list[WriteResult]:
    """Per record, by ``errors[].context.ids`` — never by position."""
    failed: dict[str, dict[str, Any]] = {}
    for err in data.get("errors") or []:
        for key in (err.get("context") or {}).get("ids") or []:
            failed[str(key)] = err
    remote_ids: dict[str, str] = {}
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
        existing = existing_id(err) if err is not None and operation == "create" else None
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


def existing_id(err: Mapping[str, Any]) -> str | None:
    """The id HubSpot names in a create CONFLICT ("Contact already exists. Existing ID: 12")."""
    if str(err.get("category")) != "CONFLICT":
        return None
    match = _EXISTING_ID.search(str(err.get("message") or ""))
    return match.group(1) if match else None


def _refused(obj: str, operation: str, item: WriteItem, key: str,
             exc: errors.Refused) -> WriteResult:
    """The result of one input HubSpot refused on its own (or named in a refusal)."""
    ref = WriteRef(obj, item.id, item.key)
    found = existing_id({**exc.body, "category": exc.fields.get("code")})
    if operation == "create" and found is not None:
        return WriteResult(ref=ref, status="ok", id=found, created=False)
    return WriteResult(ref=ref, status="rejected", code=exc.code_for(key),
                       message=exc.message_for(key))


def _retryable(ref: WriteRef, exc: SyncAgentError) -> WriteResult:
    return WriteResult(ref=ref, status="retryable",
                       code=str(exc.fields.get("code") or type(exc).__name__),
                       message=exc.message, retry_after=getattr(exc, "retry_after", None))
