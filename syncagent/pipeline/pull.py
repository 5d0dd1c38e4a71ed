"""Pull: read every stream of both systems into the mirror, page by page.

Each page's records, activities and the stream's new cursor commit in one transaction, so a
crash or a stop between pages re-reads nothing and loses nothing. A system that runs out of
budget or quota stops cleanly; the other system's streams still run.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from connectors.base import (
    ActivityRecord,
    Connector,
    Cursor,
    Page,
    Progress,
    RemoteRecord,
)
from connectors.registry import profile_of
from state.dberrors import StateDBError
from state.store import ActivityRow, CursorState, MirrorRow, StateStore
from syncagent.errors import FatalError, RetryableError, SyncAgentError
from syncagent.pipeline import echo
from syncagent.pipeline.quarantine import Poison, clean_activity, clean_record, flag_poison
from syncagent.pipeline.records import email_key

log = structlog.get_logger(__name__)


@dataclass
class PullResult:
    """What one pull did: records per stream and the systems that stopped (what changed is
    queued for matching in the state DB, with each page)."""

    counts: Counter[str] = field(default_factory=Counter)
    stopped: dict[str, str] = field(default_factory=dict)  # system -> why
    # system -> stream -> why it was switched off (e.g. a missing HubSpot scope)
    features_off: dict[str, dict[str, str]] = field(default_factory=dict)
    stop_errors: dict[str, SyncAgentError] = field(default_factory=dict)  # system -> error
    # system -> seconds its pull thread waited for the next page / spent storing pages: which
    # side held the pull up (the API and the readers, or the state DB's writes)
    waited_s: dict[str, float] = field(default_factory=dict)
    stored_s: dict[str, float] = field(default_factory=dict)


def stream_key(system: str, stream: str) -> str:
    return f"{system}.{stream}"


def to_connector_cursor(state: CursorState | None) -> Cursor | None:
    if state is None:
        return None
    sweep = state.extra.get("sweep") if state.extra else None
    return Cursor(state.modstamp, state.last_id, state.boundary_ids, sweep)


def to_state_cursor(cursor: Cursor) -> CursorState:
    extra = {"sweep": dict(cursor.sweep)} if cursor.sweep is not None else {}
    return CursorState(cursor.modstamp, cursor.last_id, cursor.boundary_ids, extra)


def pull(connectors: list[Connector], store: StateStore, cycle_start: datetime,
         stop: threading.Event, progress: Callable[[Progress], None] | None = None
         ) -> PullResult:
    """Read what changed in every stream of every connector, both systems at once (their
    API limits are separate, so neither waits for the other)."""
    # Both systems' pages are stored on one connection, a page at a time: their writes take
    # turns in the database anyway, and one connection keeps SQLite's page cache warm.
    with store.on_one_connection() as pulling, \
            ThreadPoolExecutor(max_workers=max(1, len(connectors)),
                               thread_name_prefix="pull") as pool:
        parts = list(pool.map(lambda c: _pull_one(c, pulling, cycle_start, stop, progress),
                              connectors))
    result = PullResult()
    for part in parts:
        result.counts.update(part.counts)
        result.stopped.update(part.stopped)
        result.features_off.update(part.features_off)
        result.stop_errors.update(part.stop_errors)
        result.waited_s.update(part.waited_s)
        result.stored_s.update(part.stored_s)
    return result


def _pull_one(connector: Connector, store: StateStore, cycle_start: datetime,
              stop: threading.Event, progress: Callable[[Progress], None] | None) -> PullResult:
    result = PullResult()
    try:
        _pull_system(connector, store, cycle_start, stop, progress, result)
    except StateDBError:
        raise  # the state DB failed, not this system: the cycle fails
    except (FatalError, RetryableError) as error:
        # Budget, quota, or an outage that outlasted the retries: this system's cursors stay
        # where the last page left them, and the other system's work goes on without it.
        result.stopped[connector.system] = error.message
        result.stop_errors[connector.system] = error
        log.warning("pull stopped", **error.as_dict(system=connector.system))
    off = connector.features_off
    if off:
        result.features_off[connector.system] = dict(off)
    return result


def _pull_system(connector: Connector, store: StateStore, cycle_start: datetime,
                 stop: threading.Event, progress: Callable[[Progress], None] | None,
                 result: PullResult) -> None:
    cursors = {name: to_connector_cursor(store.mirror.cursor(stream_key(connector.system, name)))
               for name in connector.streams}
    system = connector.system
    waited = stored = 0.0
    pages = iter(connector.read_many(cursors, cycle_start=cycle_start, progress=progress))
    try:
        while True:
            began = time.monotonic()
            page = next(pages, None)
            got = time.monotonic()
            waited += got - began
            if page is None:
                return
            commit(page, system, store, result)
            stored += time.monotonic() - got
            if stop.is_set():
                log.info("pull interrupted by stop", system=system, stream=page.stream)
                return
    finally:
        result.waited_s[system] = round(waited, 2)
        result.stored_s[system] = round(stored, 2)
        log.info("pull.system_done", system=system, waited_s=round(waited, 2),
                 stored_s=round(stored, 2))


def commit(page: Page, system: str, store: StateStore, result: PullResult) -> None:
    """Store one page and its cursor together (the store queues the records for matching).
    Values no database can hold are cleaned first and reported as data-quality items, so one
    poison record never stops the page, let alone the cycle."""
    poison: list[Poison] = []
    mirror_rows = [mirror_row(clean_record(item, poison)) for item in page.records
                   if isinstance(item, RemoteRecord)]
    activity_rows = [_activity_row(clean_activity(item, poison)) for item in page.records
                     if isinstance(item, ActivityRecord)]
    # activities stored as they are need no write; their records are queued as before (a
    # record they point at is news only through another activity or its own change)
    changed, news = echo.activity_news(store, activity_rows, changed_only=True)
    # what only repeats the agent's own write or a stored activity changes no one's inputs
    store.commit_page(stream_key(system, page.stream), mirror_rows, changed,
                      to_state_cursor(page.cursor),
                      unchanged=echo.unchanged(store, mirror_rows, activity_rows, news))
    flag_poison(store, poison)
    if page.reconcile_ids is not None:
        store.mirror.mark_missing_deleted(system, page.object, page.reconcile_ids)
    result.counts[stream_key(system, page.stream)] += len(page.records)


def mirror_row(record: RemoteRecord) -> MirrorRow:
    fields = dict(record.fields)
    if record.merged_into:
        fields["__merged_into"] = record.merged_into
    profile = profile_of(record.system)
    return MirrorRow(record.system, record.object, record.id, fields, record.modstamp,
                     record.deleted, email_key(record.system, record.object, record.fields),
                     profile.created_at(record.fields) if profile is not None else None)


def _activity_row(activity: ActivityRecord) -> ActivityRow:
    ref_object = activity.person_ref[1] if activity.person_ref else None
    ref_id = activity.person_ref[2] if activity.person_ref else None
    return ActivityRow(activity.system, activity.id, activity.kind, activity.occurred_at,
                       ref_object, ref_id, dict(activity.details))
