"""Push: drain the outbox in the largest batches each API takes.

Rows are claimed per (system, object, operation) so every batch is homogeneous; a system whose
one call carries several batches (PackedWrites: Salesforce's Composite) gets them packed across
objects and operations, in push order, so a call is never sent with room left while rows
wait. Each
record's result is handled on its own: success updates the mirror (so the next pull's read-back
of our own write changes nothing) and links created records to their person; a retryable
failure goes back to the queue with backoff; a permanent one becomes a dead letter carrying the
API's code and message. Nothing is dropped. The results are stored by a recorder thread
per system (recorder.py), so the next batch is sent while the last one's are stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.base import (
    Connector,
    PackedWrites,
    WriteBatch,
    WriteItem,
    WriteRef,
    WriteResult,
)
from state.recording import RecordedBatch
from state.store import OutboxItem, OutboxResult, StateStore
from syncagent.errors import FatalError, SyncAgentError
from syncagent.pipeline.due import OPERATION_ORDER, WRITE_OPERATIONS, batch_size, whole_batches
from syncagent.pipeline.holder import gone_from_this_host
from syncagent.pipeline.list_writes import change_list
from syncagent.pipeline.push_result import PushResult
from syncagent.pipeline.recorder import Recorder, settle

log = structlog.get_logger(__name__)

CLAIM_MARGIN_SECONDS = 30.0  # recording the results after the last answer
# Updates are claimed this many batches at a time (see _clears_first); they are idempotent,
# so a claim that outlives its window costs at most a repeated update.
UPDATE_CLAIM_BATCHES = 10
LIST_OPERATIONS = frozenset({"list_add", "list_remove"})


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
            whole_batches(connectors, store, defer) if full_batches
            else [(g, None) for g in _groups(store) if g[2] not in defer])
    except Exception as exc:  # nothing claimed yet: the rows wait for the next cycle
        return PushResult(failures=[_failure("outbox", "*", "claim", exc)])
    with ThreadPoolExecutor(max_workers=max(1, len(connectors)),
                            thread_name_prefix="push") as pool:
        parts = list(pool.map(
            lambda item: _push_system(item[1], store, holder, stop,
                                      [g for g in groups if g[0][0] == item[0]],
                                      whole_packs=full_batches),
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


def _push_system(connector: Connector, store: StateStore, holder: str, stop: threading.Event,
                 groups: list[tuple[tuple[str, str, str], int | None]],
                 whole_packs: bool = False) -> PushResult:
    """One system's groups in order. A stop (credentials, quota, budget, other fatal answers)
    ends this system's push; anything unexpected is recorded and the next group goes on.
    ``whole_packs``: a packing system's last, part-filled call waits for a later push."""
    result = PushResult()
    if not groups:   # nothing due: no recorder thread to start
        return result
    with Recorder(store, connector.system) as recorder:
        _push_groups(connector, store, holder, stop, groups, whole_packs, result, recorder)
    # every batch sent is recorded now; a recording that failed fails the push
    _guarded(connector, result, "*", "record", recorder.raise_failed)
    return result


def _push_groups(connector: Connector, store: StateStore, holder: str, stop: threading.Event,
                 groups: list[tuple[tuple[str, str, str], int | None]], whole_packs: bool,
                 result: PushResult, recorder: Recorder) -> None:
    packs = (_Packs(connector, store, result, recorder) if isinstance(connector, PackedWrites)
             else None)
    try:
        for (_system, object_name, operation), most in groups:
            if stop.is_set():
                return
            if packs is not None and operation in WRITE_OPERATIONS:
                step = (lambda o=object_name, op=operation, m=most:  # noqa: E731
                        _drain_packed(connector, store, holder, o, op, packs, stop, m))
            else:
                step = (lambda o=object_name, op=operation, m=most:  # noqa: E731
                        _drain(connector, store, holder, o, op, result, recorder, stop, m,
                               before=packs.send_all if packs is not None else None))
            if not _guarded(connector, result, object_name, operation, step):
                return
        if packs is not None and packs.waiting and not whole_packs and not stop.is_set():
            object_name, operation, _rows = packs.waiting[0]
            _guarded(connector, result, object_name, operation, packs.send_all)
    finally:
        if packs is not None:
            packs.release("BATCH_NOT_FULL" if whole_packs else "STOPPED")


def _guarded(connector: Connector, result: PushResult, object_name: str, operation: str,
             step: Callable[[], None]) -> bool:
    """Run one step of a system's push; False when the push of that system must end."""
    try:
        step()
    except FatalError as error:
        result.stopped[connector.system] = error.message
        result.stop_errors[connector.system] = error
        log.warning("push stopped", **error.as_dict(system=connector.system))
        return False
    except Exception as exc:  # a bug or a state DB fault: this group waits, others go on
        result.failures.append(_failure(connector.system, object_name, operation, exc))
        log.error("push step failed", system=connector.system, object=object_name,
                  operation=operation, error=type(exc).__name__)
    return True


class _Packs:
    """Claimed batches waiting for a packed call (PackedWrites), in push order: a call goes
    as soon as it is full, and the last one when the system's groups are done."""

    def __init__(self, connector: Connector, store: StateStore, result: PushResult,
                 recorder: Recorder) -> None:
        self.connector = connector
        self.writer: PackedWrites = connector  # type: ignore[assignment]
        self.store = store
        self.result = result
        self.recorder = recorder
        self.waiting: list[tuple[str, str, list[OutboxItem]]] = []

    def add(self, object_name: str, operation: str, items: list[OutboxItem]) -> None:
        size = self.connector.max_batch
        self.waiting += [(object_name, operation, items[i:i + size])
                         for i in range(0, len(items), size)]
        while len(self.waiting) >= self.writer.pack_size:
            self._send(self.writer.pack_size)

    def send_all(self) -> None:
        while self.waiting:
            self._send(self.writer.pack_size)

    def release(self, code: str) -> None:
        rows = [item for _o, _op, batch in self.waiting for item in batch]
        self.waiting = []
        _release_unsent(self.store, rows, code)

    def _send(self, count: int) -> None:
        """One call with the first ``count`` batches; each result is recorded on its own. A
        failure of the whole call settles every row of it; an error that stops the system
        settles the rows it left unanswered, then ends the push. A recording that failed
        is raised before the call: the batches stay waiting, and are released."""
        self.recorder.raise_failed()
        pack, self.waiting = self.waiting[:count], self.waiting[count:]
        unsettled = {item.id: item for _o, _op, rows in pack for item in rows}
        try:
            answer = self.writer.write_packed([
                WriteBatch(o, WRITE_OPERATIONS[op], _write_items(rows)) for o, op, rows in pack])
            for (object_name, operation, rows), results in zip(pack, answer.results,
                                                               strict=True):
                done = [(row, r) for row, r in zip(rows, results, strict=True) if r is not None]
                _record(self.recorder, self.connector.system, object_name, operation,
                        [row for row, _r in done], [r for _row, r in done], self.result)
                for row, _r in done:
                    del unsettled[row.id]
        except BaseException as exc:
            _settle(self.store, list(unsettled.values()), exc, self.result)
            raise
        if unsettled:   # only a stop leaves rows unanswered; anything else is a bug
            _settle(self.store, list(unsettled.values()),
                    answer.stop or RuntimeError("a packed write left rows unanswered"),
                    self.result)
        if answer.stop is not None:
            raise answer.stop


def _drain_packed(connector: Connector, store: StateStore, holder: str, object_name: str,
                  operation: str, packs: _Packs, stop: threading.Event,
                  most: int | None) -> None:
    """Claim the group's due rows (``most``: no more than that many) a call's room at a
    time, and hand them to the packs."""
    size = connector.max_batch
    # a batch may wait for the next group's rows to fill its call: two calls' time
    window = claim_window(connector) * 2
    claims = _claims(store, holder, connector.system, object_name, operation, size, window,
                     lambda: size * (packs.writer.pack_size - len(packs.waiting)), stop, most)
    for items in claims:
        packs.add(object_name, operation, items)


def _claims(store: StateStore, holder: str, system: str, object_name: str, operation: str,
            size: int, window: float, room: Callable[[], int], stop: threading.Event,
            most: int | None) -> Iterator[list[OutboxItem]]:
    """The group's due rows, claimed ``room()`` at a time until none is left (``most``: no
    more than that many, in whole batches only: a part batch waits for a later push)."""
    left = most
    while not stop.is_set() and (left is None or left > 0):
        limit = room() if left is None else min(room(), left)
        items = store.outbox.claim(holder, limit, system=system, object_name=object_name,
                                   operation=operation, claim_seconds=window)
        if not items:
            return
        if left is not None:
            left -= len(items)
            items = _whole(store, items, size)
        yield items


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
           operation: str, result: PushResult, recorder: Recorder, stop: threading.Event,
           most: int | None = None, before: Callable[[], None] | None = None) -> None:
    """Claim and send the group's due rows (``most``: no more than that many); ``before``:
    what must be sent first (the packed writes this group comes after)."""
    if before is not None:
        before()
    system = connector.system
    size = batch_size(connector, operation)
    batches = UPDATE_CLAIM_BATCHES if operation == "update" else 1
    window = claim_window(connector) * batches
    for items in _claims(store, holder, system, object_name, operation, size, window,
                         lambda: size * batches, stop, most):
        _send_claimed(connector, store, object_name, operation, _clears_first(items), size,
                      result, recorder, stop)


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
                  items: list[OutboxItem], size: int, result: PushResult, recorder: Recorder,
                  stop: threading.Event) -> None:
    """The claimed rows in batches of ``size``, each handed to the recorder once answered;
    when one raises, or a stop comes between batches, or a recording failed, the rows not
    sent yet go back to the queue as they were."""
    for start in range(0, len(items), size):
        batch, rest = items[start:start + size], items[start + size:]
        try:
            recorder.raise_failed()
        except BaseException as exc:
            _release_unsent(store, items[start:], type(exc).__name__)
            raise
        try:
            answers = _write(connector, object_name, operation, batch)
            _record(recorder, connector.system, object_name, operation, batch, answers, result)
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
    """Rows whose batch raised before its results were handed over (recorder.settle)."""
    result.retried += settle(store, [item.id for item in items], exc)


def _write(connector: Connector, object_name: str, operation: str,
           items: list[OutboxItem]) -> list[WriteResult]:
    if operation in ("list_add", "list_remove"):
        return change_list(connector, object_name, operation, items)
    batch = _write_items(items)
    if operation not in WRITE_OPERATIONS:  # a row no planner makes: the batch is refused
        return [WriteResult(WriteRef(object_name, item.remote_id), "rejected",
                            code="UNKNOWN_OPERATION", message=f"no write operation {operation!r}")
                for item in items]
    return connector.write(object_name, WRITE_OPERATIONS[operation], batch)


def _write_items(items: list[OutboxItem]) -> list[WriteItem]:
    return [WriteItem(fields=payload(item.fields), id=item.remote_id,
                      key=item.fields.get("__key"),
                      clear_first=tuple(item.fields.get("__clear_first") or ()),
                      associations=_associations(item.fields.get("__associate")),
                      never_sent=item.never_sent)
            for item in items]


def _associations(note: Any) -> dict[str, str]:
    """The ``__associate`` note ({"contacts": "<id>"}) as WriteItem.associations."""
    if not isinstance(note, Mapping):
        return {}
    return {str(obj): str(record_id) for obj, record_id in note.items() if record_id}


def payload(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields to send: outbox rows also carry `__`-prefixed notes for the pipeline."""
    return {k: v for k, v in fields.items() if not k.startswith("__")}


def _record(recorder: Recorder, system: str, object_name: str, operation: str,
            items: list[OutboxItem], answers: list[WriteResult], result: PushResult) -> None:
    """Count a sent batch's answers and hand them to the recorder (it waits while the
    recorder is ``AHEAD`` batches behind)."""
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
    recorder.submit(RecordedBatch(system, object_name, outcomes, written, links))


def _note_success(system: str, object_name: str, operation: str, item: OutboxItem,
                  answer: WriteResult, written: dict[str, dict[str, Any]],
                  links: list[tuple[str, str, str, int, str]], result: PushResult) -> None:
    remote_id = answer.id or item.remote_id
    fields = payload(item.fields)
    if answer.dropped:   # rare: the fields the API refused, by their names in any case
        sent = {name.casefold(): value for name, value in fields.items()}
        result.dropped.extend((system, object_name, remote_id, error,
                               sent.get(error.field.casefold()), item.person_id)
                              for error in answer.dropped)
        left_out = {error.field.casefold() for error in answer.dropped}
        fields = {name: value for name, value in fields.items()
                  if name.casefold() not in left_out}
    if remote_id is None:
        return
    written[remote_id] = fields
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
