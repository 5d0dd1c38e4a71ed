"""Push: drain the outbox in the largest batches each API takes.

Rows are claimed per (system, object, operation) so every call is one homogeneous batch. Each
record's result is handled on its own: success updates the mirror (so the next pull's read-back
of our own write changes nothing) and links created records to their person; a retryable
failure goes back to the queue with backoff; a permanent one becomes a dead letter carrying the
API's code and message. Nothing is dropped.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import (
    Connector,
    FieldError,
    ListMembership,
    WriteItem,
    WriteOperation,
    WriteRef,
    WriteResult,
)
from state.store import OutboxItem, OutboxResult, StateStore
from syncagent.errors import (
    FatalError,
    RecordRejected,
    RetryableError,
    SyncAgentError,
    stops_system,
)
from syncagent.pipeline.holder import gone_from_this_host

log = structlog.get_logger(__name__)

# Creates first: the records they make are linked before anything else refers to them.
OPERATION_ORDER = {"upsert": 0, "create": 0, "update": 1, "list_add": 2, "list_remove": 2}
CLAIM_MARGIN_SECONDS = 30.0  # recording the results after the last answer
# Updates are claimed this many batches at a time (see _clears_first); they are idempotent,
# so a claim that outlives its window costs at most a repeated update.
UPDATE_CLAIM_BATCHES = 10


LIST_OPERATIONS = frozenset({"list_add", "list_remove"})
WRITE_OPERATIONS: dict[str, WriteOperation] = {"create": "create", "update": "update",
                                               "upsert": "upsert"}


@dataclass
class PushResult:
    written: Counter[str] = field(default_factory=Counter)
    created: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    retried: int = 0
    stopped: dict[str, str] = field(default_factory=dict)
    list_changes: Counter[str] = field(default_factory=Counter)  # list -> members changed
    # fields a connector left out to get a record written:
    # (system, object, record id, error, value sent, person id)
    dropped: list[tuple[str, str, str | None, FieldError, Any, int | None]] = field(
        default_factory=list)
    created_persons: set[int] = field(default_factory=set)  # persons given a new record
    created_refs: list[tuple[str, str, str]] = field(default_factory=list)  # what was created
    # system -> the error that stopped it (the cycle decides whether `run` must stop)
    stop_errors: dict[str, SyncAgentError] = field(default_factory=dict)
    # steps that raised something unexpected: the cycle is recorded `failed`
    failures: list[dict[str, Any]] = field(default_factory=list)

    def merge(self, other: PushResult) -> None:
        self.written.update(other.written)
        self.created.update(other.created)
        self.rejected += other.rejected
        self.retried += other.retried
        self.stopped.update(other.stopped)
        self.list_changes.update(other.list_changes)
        self.stop_errors.update(other.stop_errors)
        self.failures += other.failures
        self.dropped.extend(other.dropped)
        self.created_persons.update(other.created_persons)
        self.created_refs.extend(other.created_refs)


def push(connectors: Mapping[str, Connector], store: StateStore, holder: str,
         stop: threading.Event, *, defer: frozenset[str] = frozenset(),
         full_batches: bool = False) -> PushResult:
    """Write every due outbox row, both systems at once; returns what was written, created
    and rejected. Whatever raises, every row claimed here ends done, pending or dead.
    ``defer``: operations left for a later push of the same cycle (list changes wait for
    the contacts a create makes, so each list is changed in as few calls as possible).
    ``full_batches``: only whole batches are sent (a push while rows are still being queued
    leaves the remainder to a later push rather than spend a call on a part batch)."""
    try:
        release_orphaned_claims(store)
        groups: list[tuple[tuple[str, str, str], int | None]] = (
            _whole_batches(connectors, store, defer) if full_batches
            else [(g, None) for g in _groups(store) if g[2] not in defer])
    except Exception as exc:  # nothing claimed yet: the rows wait for the next cycle
        return PushResult(failures=[_failure("outbox", "*", "claim", exc)])
    with ThreadPoolExecutor(max_workers=max(1, len(connectors)),
                            thread_name_prefix="push") as pool:
        parts = list(pool.map(
            lambda item: _push_system(item[1], store, holder, stop,
                                      [g for g in groups if g[0][0] == item[0]]),
            connectors.items()))
    result = PushResult()
    for part in parts:
        result.merge(part)
    return result


def release_orphaned_claims(store: StateStore) -> int:
    """Rows claimed by a process on this host that has since died (SIGKILL, OOM) go back to
    the queue now instead of waiting out the claim window."""
    orphaned = [ids for holder, ids in store.outbox.claim_holders().items()
                if gone_from_this_host(holder)]
    released = sum(store.outbox.release(ids, code="CLAIM_ORPHANED",
                                        message="the process that claimed it is gone")
                   for ids in orphaned)
    if released:
        log.info("orphaned claims released", rows=released)
    return released


def claim_window(connector: Connector) -> float:
    """How long a claim must last: one batch call with all its retries (timeout per attempt
    plus the longest backoff between them), and time to record the answers. A server's long
    Retry-After can outlast it; then another agent may send the batch again, which is
    harmless: updates, upserts by key and list changes are idempotent."""
    return connector.longest_call() + CLAIM_MARGIN_SECONDS


def _whole_batches(connectors: Mapping[str, Connector], store: StateStore,
                   defer: frozenset[str]) -> list[tuple[tuple[str, str, str], int | None]]:
    """The groups with at least one whole batch due, each with the rows that fill whole
    batches, in push order."""
    out = []
    for group, due in store.outbox.due_counts().items():
        connector = connectors.get(group[0])
        if connector is None or group[2] in defer:
            continue
        size = _batch_size(connector, group[2])
        if due >= size:
            out.append((group, due - due % size))
    return sorted(out, key=lambda g: (OPERATION_ORDER.get(g[0][2], 3), g[0][0], g[0][1]))


def _batch_size(connector: Connector, operation: str) -> int:
    return (connector.profile.list_batch_size if operation.startswith("list_")
            else connector.max_batch)


def _push_system(connector: Connector, store: StateStore, holder: str, stop: threading.Event,
                 groups: list[tuple[tuple[str, str, str], int | None]]) -> PushResult:
    """One system's groups in order. A stop (credentials, quota, budget, other fatal answers)
    ends this system's push; anything unexpected is recorded and the next group goes on."""
    result = PushResult()
    for (_system, object_name, operation), most in groups:
        if stop.is_set():
            break
        try:
            _drain(connector, store, holder, object_name, operation, result, stop, most)
        except FatalError as error:
            result.stopped[connector.system] = error.message
            result.stop_errors[connector.system] = error
            log.warning("push stopped", **error.as_dict(system=connector.system))
            break
        except Exception as exc:  # a bug or a state DB fault: this group waits, others go on
            result.failures.append(_failure(connector.system, object_name, operation, exc))
            log.error("push step failed", system=connector.system, object=object_name,
                      operation=operation, error=type(exc).__name__)
    return result


def _failure(system: str, object_name: str, operation: str,
             exc: Exception) -> dict[str, Any]:
    if isinstance(exc, SyncAgentError):
        return exc.as_dict(system=system, object=object_name, operation=operation,
                           step="push")
    # Only the type: the text of an unknown exception may carry record values or SQL.
    return {"error": type(exc).__name__, "system": system, "object": object_name,
            "operation": operation, "step": "push",
            "message": f"{type(exc).__name__} while pushing {system} {object_name} {operation}"}


def _groups(store: StateStore) -> list[tuple[str, str, str]]:
    groups = store.outbox.groups(datetime.now(UTC))
    return sorted(groups, key=lambda g: (OPERATION_ORDER.get(g[2], 3), g[0], g[1]))


def _drain(connector: Connector, store: StateStore, holder: str, object_name: str,
           operation: str, result: PushResult, stop: threading.Event,
           most: int | None = None) -> None:
    """Claim and send the group's due rows (``most``: no more than that many)."""
    system = connector.system
    size = _batch_size(connector, operation)
    batches = UPDATE_CLAIM_BATCHES if operation == "update" else 1
    window = claim_window(connector) * batches
    left = most
    while not stop.is_set() and (left is None or left > 0):
        limit = size * batches if left is None else min(size * batches, left)
        items = store.outbox.claim(holder, limit, system=system,
                                   object_name=object_name, operation=operation,
                                   claim_seconds=window)
        if not items:
            return
        if left is not None:   # whole batches only: a part batch waits for a later push
            left -= len(items)
            items = _whole(store, items, size)
        _send_claimed(connector, store, object_name, operation, _clears_first(items), size,
                      result, stop)


def _whole(store: StateStore, items: list[OutboxItem], size: int) -> list[OutboxItem]:
    """The claimed rows that fill whole batches, counting updates that clear a field first
    apart (they go in batches of their own, _clears_first); the rest go back to the queue
    at once, untouched, for a later push to send with the rows still to come."""
    clears = [item for item in items if item.fields.get("__clear_first")]
    plain = [item for item in items if not item.fields.get("__clear_first")]
    keep = clears[:len(clears) - len(clears) % size] + plain[:len(plain) - len(plain) % size]
    kept = {item.id for item in keep}
    _release_unsent(store, [item for item in items if item.id not in kept], "BATCH_NOT_FULL")
    return keep


def _clears_first(items: list[OutboxItem]) -> list[OutboxItem]:
    """Updates that must blank a field first (HubSpot's lifecycle stage moving back) go
    together at the front: the blanking is one extra call per batch that holds any, so
    gathering them costs ceil(n/100) extra calls instead of one per batch."""
    return sorted(items, key=lambda item: not item.fields.get("__clear_first"))


def _send_claimed(connector: Connector, store: StateStore, object_name: str, operation: str,
                  items: list[OutboxItem], size: int, result: PushResult,
                  stop: threading.Event) -> None:
    """The claimed rows in batches of ``size``; when one raises, or a stop comes between
    batches, the rows not sent yet go back to the queue as they were."""
    for start in range(0, len(items), size):
        batch, rest = items[start:start + size], items[start + size:]
        try:
            answers = _write(connector, object_name, operation, batch)
            _record(store, connector.system, object_name, operation, batch, answers, result)
        except BaseException as exc:
            _settle(store, batch, exc, result)
            _release_unsent(store, rest, type(exc).__name__)
            raise
        if stop.is_set():
            _release_unsent(store, rest, "STOPPED")
            return


def _release_unsent(store: StateStore, items: list[OutboxItem], code: str) -> None:
    if not items:
        return
    try:
        store.outbox.release([item.id for item in items], code=code,
                             message="claimed but not sent before the push ended")
    except Exception as again:  # the state DB itself: the claims expire and are re-claimed
        log.error("unsent rows not released; they are claimed again when the claim expires",
                  rows=len(items), error=type(again).__name__)


def _settle(store: StateStore, items: list[OutboxItem], exc: BaseException,
            result: PushResult) -> None:
    """Rows whose batch raised before its results were recorded. A stop that is not the
    records' fault (credentials, quota, budget, shutdown) puts them back as they were; any
    other failure counts as an attempt, so a batch that always fails ends as dead letters
    instead of blocking the queue. Rows already recorded (done) are left alone."""
    ids = [item.id for item in items]
    code = str(getattr(exc, "fields", {}).get("code") or type(exc).__name__)
    message = exc.message if isinstance(exc, SyncAgentError) else \
        f"{type(exc).__name__} while pushing this batch"
    try:
        if stops_system(exc) or not isinstance(exc, Exception):
            store.outbox.release(ids, code=code, message=message)
            return
        retry_at = None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            retry_at = datetime.now(UTC) + timedelta(seconds=exc.retry_after)
        store.outbox.complete([OutboxResult(i, "retryable", code=code, message=message,
                                            retry_at=retry_at) for i in ids])
        result.retried += len(ids)
    except Exception as again:  # the state DB itself: the claims expire and are re-claimed
        log.error("claimed rows not settled; they are claimed again when the claim expires",
                  rows=len(ids), error=type(again).__name__)


def _write(connector: Connector, object_name: str, operation: str,
           items: list[OutboxItem]) -> list[WriteResult]:
    if operation in ("list_add", "list_remove"):
        return _change_list(connector, object_name, operation, items)
    batch = [WriteItem(fields=payload(item.fields), id=item.remote_id,
                       key=item.fields.get("__key"),
                       clear_first=tuple(item.fields.get("__clear_first") or ()),
                       associations=_associations(item.fields.get("__associate")),
                       never_sent=item.never_sent)
             for item in items]
    if operation not in WRITE_OPERATIONS:  # a row no planner makes: the batch is refused
        return [WriteResult(WriteRef(object_name, item.remote_id), "rejected",
                            code="UNKNOWN_OPERATION", message=f"no write operation {operation!r}")
                for item in items]
    return connector.write(object_name, WRITE_OPERATIONS[operation], batch)


def _change_list(connector: Connector, object_name: str, operation: str,
                 items: list[OutboxItem]) -> list[WriteResult]:
    """One membership call for the batch; ids the system reports missing are rejected."""
    list_id = object_name.split(":", 1)[1]   # the list's name (resolved by the connector)
    ids = [item.remote_id or "" for item in items]
    if not isinstance(connector, ListMembership):
        return [WriteResult(WriteRef(object_name, rid), "rejected", code="NO_LISTS",
                            message=f"{connector.profile.label} has no lists to change")
                for rid in ids]
    label = connector.profile.label
    try:
        if operation == "list_add":
            answer = connector.change_list(list_id, add=ids)
        else:
            answer = connector.change_list(list_id, remove=ids)
    except RetryableError as error:
        return [WriteResult(WriteRef(object_name, rid), "retryable", code=type(error).__name__,
                            message=error.message) for rid in ids]
    except RecordRejected as error:   # the connector's word: no such list, or a DYNAMIC one
        return [WriteResult(WriteRef(object_name, rid), "rejected", code=error.code,
                            message=error.message) for rid in ids]
    except FatalError as error:
        if stops_system(error):
            raise
        # An unknown or DYNAMIC list: these rows cannot succeed until the track is fixed;
        # other lists and every other write go on.
        code, message = _list_refused(label, list_id, error)
        return [WriteResult(WriteRef(object_name, rid), "rejected", code=code, message=message)
                for rid in ids]
    # A contact that is already out of the list is where a removal wants it: only a missing
    # contact on an add is a failure.
    missing = set(answer.get("recordIdsMissing", [])) if operation == "list_add" else set()
    return [WriteResult(WriteRef(object_name, rid), "rejected", code="LIST_RECORD_MISSING",
                        message=f"{label} has no contact {rid} to put in list {list_id}")
            if rid in missing else WriteResult(WriteRef(object_name, rid), "ok", id=rid)
            for rid in ids]


def _list_refused(label: str, list_id: str, error: FatalError) -> tuple[str, str]:
    if error.fields.get("status") == 404:
        return ("LIST_NOT_FOUND", f"{label} has no list {list_id}: fix the track's list in "
                                  "nurture.yaml, then `syncagent errors --retry-code "
                                  "LIST_NOT_FOUND`")
    return (str(error.fields.get("code") or "LIST_REFUSED"),
            f"{label} refused a membership change of list {list_id}: {error.message}")


def _associations(note: Any) -> dict[str, str]:
    """The ``__associate`` note ({"contacts": "<id>"}) as WriteItem.associations."""
    if not isinstance(note, Mapping):
        return {}
    return {str(obj): str(record_id) for obj, record_id in note.items() if record_id}


def payload(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields to send: outbox rows also carry `__`-prefixed notes for the pipeline."""
    return {k: v for k, v in fields.items() if not k.startswith("__")}


def _record(store: StateStore, system: str, object_name: str, operation: str,
            items: list[OutboxItem], answers: list[WriteResult], result: PushResult) -> None:
    outcomes: list[OutboxResult] = []
    written: dict[str, dict[str, Any]] = {}
    links: list[tuple[str, str, str, int, str]] = []
    for item, answer in zip(items, answers, strict=True):
        outcomes.append(OutboxResult(item.id, answer.status, answer.id, answer.code,
                                     answer.message))
        if answer.status == "rejected":
            result.rejected += 1
        elif answer.status == "retryable":
            result.retried += 1
        elif operation in ("list_add", "list_remove"):
            result.list_changes[object_name] += 1
        else:
            _note_success(system, object_name, operation, item, answer, written, links, result)
    store.outbox.complete(outcomes)
    if written:
        store.mirror.record_written(system, object_name, written)
    if links:  # a create that found an existing record never takes it from its person
        store.persons.link(links, keep_existing=True)


def _note_success(system: str, object_name: str, operation: str, item: OutboxItem,
                  answer: WriteResult, written: dict[str, dict[str, Any]],
                  links: list[tuple[str, str, str, int, str]], result: PushResult) -> None:
    remote_id = answer.id or item.remote_id
    sent = {name.casefold(): value for name, value in payload(item.fields).items()}
    result.dropped.extend((system, object_name, remote_id, error, sent.get(error.field.casefold()),
                           item.person_id) for error in answer.dropped)
    if remote_id is None:
        return
    left_out = {error.field.casefold() for error in answer.dropped}
    written[remote_id] = {name: value for name, value in payload(item.fields).items()
                          if name.casefold() not in left_out}
    if operation != "update":
        result.created_refs.append((system, object_name, remote_id))  # read back this cycle
    if operation == "update" or answer.created is False:
        # a re-sent create (after a crash) that found its record is an update, not a creation
        result.written[system] += 1
    else:
        result.created[system] += 1
    if item.person_id is not None and item.fields.get("__person_record"):
        result.created_persons.add(item.person_id)
        links.append((system, object_name, remote_id, item.person_id, "created"))
