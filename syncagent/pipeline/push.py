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
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from connectors.base import Connector, FieldError, WriteItem, WriteRef, WriteResult
from state.store import OutboxItem, OutboxResult, StateStore
from syncagent.errors import FatalError, RetryableError

log = structlog.get_logger(__name__)

BATCH = {"salesforce": 200, "hubspot": 100}
LIST_BATCH = 1_000  # HubSpot list membership changes go in one call per list and 1,000 ids
# Creates first: the records they make are linked before anything else refers to them.
OPERATION_ORDER = {"upsert": 0, "create": 0, "update": 1, "list_add": 2, "list_remove": 2}


class ListWriter(Protocol):
    """HubSpot's list membership calls (MANUAL and SNAPSHOT lists)."""

    def change_list(self, list_id: str, *, add: Sequence[str] = (),
                    remove: Sequence[str] = ()) -> dict[str, list[str]]: ...


@dataclass
class PushResult:
    written: Counter[str] = field(default_factory=Counter)
    created: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    retried: int = 0
    stopped: dict[str, str] = field(default_factory=dict)
    list_changes: Counter[str] = field(default_factory=Counter)  # list -> members changed
    # fields a connector left out to get a record written: (system, object, record id, error)
    dropped: list[tuple[str, str, str | None, FieldError, Any]] = field(default_factory=list)
    created_persons: set[int] = field(default_factory=set)  # persons given a new record
    created_refs: list[tuple[str, str, str]] = field(default_factory=list)  # what was created


def push(connectors: Mapping[str, Connector], store: StateStore, holder: str,
         stop: threading.Event) -> PushResult:
    """Write every due outbox row, both systems at once; returns what was written, created
    and rejected."""
    groups = _groups(store)
    with ThreadPoolExecutor(max_workers=max(1, len(connectors)),
                            thread_name_prefix="push") as pool:
        parts = list(pool.map(
            lambda item: _push_system(item[1], store, holder, stop,
                                      [g for g in groups if g[0] == item[0]]),
            connectors.items()))
    result = PushResult()
    for part in parts:
        result.written.update(part.written)
        result.created.update(part.created)
        result.rejected += part.rejected
        result.retried += part.retried
        result.stopped.update(part.stopped)
        result.list_changes.update(part.list_changes)
        result.dropped.extend(part.dropped)
        result.created_persons.update(part.created_persons)
        result.created_refs.extend(part.created_refs)
    return result


def _push_system(connector: Connector, store: StateStore, holder: str, stop: threading.Event,
                 groups: list[tuple[str, str, str]]) -> PushResult:
    result = PushResult()
    for _system, object_name, operation in groups:
        if stop.is_set():
            break
        try:
            _drain(connector, store, holder, object_name, operation, result, stop)
        except FatalError as error:
            result.stopped[connector.system] = error.message
            log.warning("push stopped", **error.as_dict(system=connector.system))
            break
    return result


def _groups(store: StateStore) -> list[tuple[str, str, str]]:
    groups = store.outbox_groups(datetime.now(UTC))
    return sorted(groups, key=lambda g: (OPERATION_ORDER.get(g[2], 3), g[0], g[1]))


def _drain(connector: Connector, store: StateStore, holder: str, object_name: str,
           operation: str, result: PushResult, stop: threading.Event) -> None:
    system = connector.system
    while not stop.is_set():
        size = LIST_BATCH if operation.startswith("list_") else BATCH[system]
        items = store.claim_outbox(holder, size, system=system,
                                   object_name=object_name, operation=operation)
        if not items:
            return
        answers = _write(connector, object_name, operation, items)
        _record(store, system, object_name, operation, items, answers, result)


def _write(connector: Connector, object_name: str, operation: str,
           items: list[OutboxItem]) -> list[WriteResult]:
    if operation in ("list_add", "list_remove"):
        return _change_list(connector, object_name, operation, items)
    batch = [WriteItem(fields=payload(item.fields), id=item.remote_id,
                       key=item.fields.get("__key")) for item in items]
    return connector.write(object_name, operation, batch)  # type: ignore[arg-type]


def _change_list(connector: Connector, object_name: str, operation: str,
                 items: list[OutboxItem]) -> list[WriteResult]:
    """One membership call for the batch; ids HubSpot reports missing are rejected."""
    writer: ListWriter = connector  # type: ignore[assignment]
    list_id = object_name.split(":", 1)[1]
    ids = [item.remote_id or "" for item in items]
    try:
        if operation == "list_add":
            answer = writer.change_list(list_id, add=ids)
        else:
            answer = writer.change_list(list_id, remove=ids)
    except RetryableError as error:
        return [WriteResult(WriteRef(object_name, rid), "retryable", code=type(error).__name__,
                            message=error.message) for rid in ids]
    missing = set(answer.get("recordIdsMissing", []))
    return [WriteResult(WriteRef(object_name, rid), "rejected", code="LIST_RECORD_MISSING",
                        message=f"HubSpot has no contact {rid} to put in list {list_id}")
            if rid in missing else WriteResult(WriteRef(object_name, rid), "ok", id=rid)
            for rid in ids]


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
    store.complete_outbox(outcomes)
    if written:
        store.record_written(system, object_name, written)
    if links:  # a create that found an existing record never takes it from its person
        store.link(links, keep_existing=True)


def _note_success(system: str, object_name: str, operation: str, item: OutboxItem,
                  answer: WriteResult, written: dict[str, dict[str, Any]],
                  links: list[tuple[str, str, str, int, str]], result: PushResult) -> None:
    remote_id = answer.id or item.remote_id
    sent = {name.casefold(): value for name, value in payload(item.fields).items()}
    result.dropped.extend((system, object_name, remote_id, error, sent.get(error.field.casefold()))
                          for error in answer.dropped)
    if remote_id is None:
        return
    left_out = {error.field.casefold() for error in answer.dropped}
    written[remote_id] = {name: value for name, value in payload(item.fields).items()
                          if name.casefold() not in left_out}
    if operation == "update":
        result.written[system] += 1
        return
    result.created[system] += 1
    result.created_refs.append((system, object_name, remote_id))
    if item.person_id is not None and item.fields.get("__person_record"):
        result.created_persons.add(item.person_id)
        links.append((system, object_name, remote_id, item.person_id, "created"))
