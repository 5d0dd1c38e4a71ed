"""Salesforce writes: sObject Collections of at most COLLECTION_MAX records, packed five to a
Composite call.

Creates that carry an idempotency key go as upserts on the object's external-id field, so a
create retried after a timeout whose request did land updates instead of making a second
record; a plain create (no key) is never sent again blindly: when its outcome is unknown it
is read back first (readback.py). Optional-feature fields the user cannot write are left out
before sending (their feature is off and reported); records refused for some fields only are
sent again at once without them (isolate.py). Results come back one per item, in input
order.

Packing: one ``POST /composite`` call carries up to five collections (API-FACTS: at most five
of its subrequests may be queries or sObject Collections, and the call counts as ONE API
call), of any objects and operations, with ``allOrNone: false`` so each collection stands on
its own. Its answers are matched by ``referenceId``, never by position. A collection alone goes
as a plain collections call (one call either way). How a refused part is judged: ``_judged``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    PackedWrite,
    WriteBatch,
    WriteItem,
    WriteOperation,
    WriteRef,
    WriteResult,
)
from connectors.salesforce import errors, isolate, streams
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.limits import COLLECTION_MAX, COMPOSITE_MAX_QUERIES
from connectors.salesforce.readback import settle_creates
from connectors.salesforce.schema_cache import FEATURES, SchemaCache
from syncagent.errors import (
    AuthError,
    ConfigError,
    FatalError,
    LockContention,
    RateLimited,
    RetryableError,
    SyncAgentError,
    stops_system,
)

#: a chunk's results, or the error that leaves them unsettled (a stop for the whole push)
Judged = list[WriteResult] | SyncAgentError


@dataclass(frozen=True)
class _Chunk:
    """One sObject Collection: at most COLLECTION_MAX items of one batch, by position."""

    batch: int
    positions: tuple[int, ...]
    object: str
    method: str
    path: str            # under /services/data/vXX.X/
    records: list[dict[str, Any]]
    refs: list[WriteRef]


class CollectionWriter:
    """Writes batches of any size through sObject Collections, packed into Composite calls."""

    def __init__(self, client: SalesforceClient, schema: SchemaCache) -> None:
        self.client = client
        self.schema = schema

    def write(self, object: str, operation: WriteOperation,
              batch: Sequence[WriteItem]) -> list[WriteResult]:
        """One object's batch (any size); an error that stops the system raises."""
        answer = self.write_packed([WriteBatch(object, operation, batch)])
        if answer.stop is not None:
            raise answer.stop
        return [result for result in answer.results[0] if result is not None]

    def write_packed(self, batches: Sequence[WriteBatch]) -> PackedWrite:
        """Every batch's collections, five to a call; then the records refused for some
        fields only, batch by batch, without those fields (isolate.py)."""
        prepared = [WriteBatch(b.object, b.operation,
                               [self._without_unwritable(b.object, item) for item in b.items])
                    for b in batches]
        chunks = [chunk for n, batch in enumerate(prepared)
                  for chunk in _chunks(n, batch.object, batch.operation, batch.items)]
        judged, stop = self._send(chunks)
        results: list[list[WriteResult | None]] = [[None] * len(b.items) for b in prepared]
        for chunk, outcome in zip(chunks, judged, strict=True):
            if outcome is not None:
                for position, result in zip(chunk.positions, outcome, strict=True):
                    results[chunk.batch][position] = result
        for n, batch in enumerate(prepared):
            done = [r for r in results[n] if r is not None]
            if stop is None and len(done) == len(results[n]):
                try:
                    results[n] = list(self._isolated(batch, done))
                    continue
                except SyncAgentError as exc:   # a re-send failed as a whole: as in _send
                    stop = exc
            # stopped: a record refused for some fields only waits to be sent without them
            results[n] = [None if r is not None and r.field_errors else r for r in results[n]]
        return PackedWrite(results, stop)

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

    def _isolated(self, batch: WriteBatch, first: list[WriteResult]) -> list[WriteResult]:
        """Records refused for some fields only go again at once, without them; a refusal for
        a field the describe said exists reads it again (schema_cache.py)."""
        def again(items: Sequence[WriteItem]) -> list[WriteResult]:
            chunks = _chunks(0, batch.object, batch.operation, items)
            judged, stop = self._send(chunks)
            if stop is not None:
                raise stop
            out: list[WriteResult | None] = [None] * len(items)
            for chunk, outcome in zip(chunks, judged, strict=True):
                for position, result in zip(chunk.positions, outcome or [], strict=True):
                    out[position] = result
            return [result for result in out if result is not None]

        key_field = streams.IDEMPOTENCY_FIELDS.get(batch.object)
        protected = frozenset({key_field} if key_field else ())
        return self.schema.after_refusals(
            batch.object, isolate.write_isolated(batch.items, first, again, protected))

    def _send(self, chunks: Sequence[_Chunk]
              ) -> tuple[list[list[WriteResult] | None], SyncAgentError | None]:
        """Each chunk's outcome (None: not sent, a stop came first), five chunks a call; and
        the first error that stops the system. A whole call that fails after its retries
        (retry.py) leaves its records retryable; any other failure of a whole call stops."""
        out: list[list[WriteResult] | None] = []
        stop: SyncAgentError | None = None
        for start in range(0, len(chunks), COMPOSITE_MAX_QUERIES):
            pack = chunks[start:start + COMPOSITE_MAX_QUERIES]
            if stop is not None:
                out += [None] * len(pack)
                continue
            judged = self._judged_call(pack)
            expired = [n for n, j in enumerate(judged) if _session_expired(j)]
            if expired:
                # the one re-login a plain call gets (client._attempt); expired again: a stop
                for n, again in zip(expired, self._after_relogin([pack[n] for n in expired]),
                                    strict=True):
                    judged[n] = again
            stop = next((j for j in judged if isinstance(j, SyncAgentError)), None)
            out += [j if isinstance(j, list) else None for j in judged]
        return out, stop

    def _after_relogin(self, pack: Sequence[_Chunk]) -> list[Judged]:
        try:
            self.client.relogin()
        except SyncAgentError as exc:   # a given session id cannot be renewed
            return [exc] * len(pack)
        return self._judged_call(pack, composite=True)   # refused as parts: again as parts

    def _judged_call(self, pack: Sequence[_Chunk], *, composite: bool = False) -> list[Judged]:
        """One call's outcome per chunk; a whole call that fails after its retries leaves
        its records retryable (plain creates: read back first, readback.py, unless the org
        said it did not carry the call out), any other failure of it is every chunk's stop."""
        sent_at = datetime.now(UTC)
        try:
            return self._call(pack, sent_at, composite=composite)
        except RetryableError as exc:
            refused = isinstance(exc, RateLimited | LockContention)
            return [self._unknown(chunk, sent_at, exc.message)
                    if _plain_create(chunk) and not refused
                    else [_retryable(ref, exc) for ref in chunk.refs] for chunk in pack]
        except SyncAgentError as exc:
            return [exc] * len(pack)

    def _call(self, pack: Sequence[_Chunk], sent_at: datetime, *,
              composite: bool = False) -> list[Judged]:
        # a plain create sent again after an unknown outcome could make a second record
        once = not any(_plain_create(chunk) for chunk in pack)
        if len(pack) == 1 and not composite:
            chunk = pack[0]
            answer = self.client.collections_at(chunk.method, chunk.path, chunk.records,
                                                resend_unknown=once)
            return [_results(chunk, answer)]
        subrequests = [{"method": chunk.method, "url": self.client.data_path(chunk.path),
                        "referenceId": _reference(n),
                        "body": {"allOrNone": False, "records": chunk.records}}
                       for n, chunk in enumerate(pack)]
        answers = {a.get("referenceId"): a for a in
                   self.client.composite(subrequests, operation="composite_write",
                                         resend_unknown=once)}
        return [self._unknown(chunk, sent_at, "its Composite part had no answer or a 5xx")
                if _plain_create(chunk) and _outcome_unknown(answers.get(_reference(n)))
                else _judged(chunk, answers.get(_reference(n)))
                for n, chunk in enumerate(pack)]

    def _unknown(self, chunk: _Chunk, sent_at: datetime, why: str) -> Judged:
        """A plain create whose outcome is unknown: read back before it may go again."""
        return settle_creates(self.client, chunk.object, chunk.records, chunk.refs, sent_at,
                              f"the create's outcome is unknown ({why})")


def _plain_create(chunk: _Chunk) -> bool:
    """A create with no external-id key to upsert by: not idempotent (readback.py)."""
    return chunk.method == "POST"


def _outcome_unknown(answer: Mapping[str, Any] | None) -> bool:
    """A part that does not say whether its writes were made: none, or a server error."""
    return answer is None or int(answer.get("httpStatusCode") or 500) >= 500


def _session_expired(judged: Judged) -> bool:
    """A Composite part refused for an expired session (a whole call has had its re-login
    in client._attempt already)."""
    return (isinstance(judged, AuthError) and judged.fields.get("part") is True
            and judged.fields.get("code") == "INVALID_SESSION_ID")


def _reference(n: int) -> str:
    return f"collection{n}"


def _judged(chunk: _Chunk, answer: Mapping[str, Any] | None) -> Judged:
    """One collection's part of a Composite answer. Its records fail alone: retryable when
    the part was refused for a passing reason (a lock, a 5xx, too many requests), rejected
    with the org's code otherwise. A session or allocation error stops the push, as it does
    for a plain call. A part with no answer at all (the call landed, its answer is lost)
    leaves its records retryable: an update or a keyed upsert sent again changes nothing (a
    plain create is read back instead: _call). (A session error gets one re-login and one more
    try first: see _send.)"""
    if answer is None:
        lost = FatalError(f"salesforce composite: no answer for {chunk.object} collection",
                          system="salesforce", code="NO_ANSWER")
        return [_retryable(ref, lost) for ref in chunk.refs]
    status = int(answer.get("httpStatusCode") or 500)
    body = answer.get("body")
    if status < 300:
        return _results(chunk, body)
    error = errors.classify(status, body, operation=f"collections {chunk.object}",
                            headers=answer.get("httpHeaders"))
    if stops_system(error):
        error.fields["part"] = True
        return error
    if isinstance(error, RetryableError):
        return [_retryable(ref, error) for ref in chunk.refs]
    code = str(error.fields.get("code") or f"HTTP_{status}")
    return [WriteResult(ref=ref, status="rejected", code=code, message=error.message)
            for ref in chunk.refs]


def _results(chunk: _Chunk, answer: Any) -> Judged:
    """A collection's per-record results; they come in request order (API-FACTS)."""
    items = answer if isinstance(answer, list) else []
    if len(items) != len(chunk.refs):
        return FatalError(f"salesforce collections answered {len(items)} results for "
                          f"{len(chunk.refs)} records", system="salesforce", object=chunk.object)
    return [_result(ref, item) for ref, item in zip(chunk.refs, items, strict=True)]


def _chunks(batch: int, obj: str, operation: WriteOperation,
            items: Sequence[WriteItem]) -> list[_Chunk]:
    """The batch as collections of COLLECTION_MAX. Keyed creates go as upserts by key, the
    rest as plain creates (a collection takes one endpoint); positions keep input order."""
    ext_field = streams.IDEMPOTENCY_FIELDS.get(obj)
    if operation == "create" and ext_field:
        groups = [[n for n, item in enumerate(items) if item.key],
                  [n for n, item in enumerate(items) if not item.key]]
    else:
        groups = [list(range(len(items)))]
    out = []
    for group in groups:
        for start in range(0, len(group), COLLECTION_MAX):
            positions = tuple(group[start:start + COLLECTION_MAX])
            chosen = [items[n] for n in positions]
            method, path = _endpoint(obj, operation, chosen, ext_field)
            out.append(_Chunk(batch, positions, obj, method, path,
                              [_record(obj, operation, item, ext_field) for item in chosen],
                              [WriteRef(obj, item.id, item.key) for item in chosen]))
    return out


def _endpoint(obj: str, operation: WriteOperation, items: Sequence[WriteItem],
              ext_field: str | None) -> tuple[str, str]:
    if operation == "update":
        return "PATCH", "composite/sobjects"
    if ext_field and all(item.key for item in items):
        # Creates carry their idempotency key: upsert by it, so a retried create (after a
        # timeout whose request did land) updates instead of making a second record.
        return "PATCH", f"composite/sobjects/{obj}/{ext_field}"
    return "POST", "composite/sobjects"


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
