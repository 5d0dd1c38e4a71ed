"""Housekeeping after a cycle: prune run history past its retention, once a day.

Pruning is never part of the cycle's work or status: a prune that fails (a locked table, a lost
connection) is logged and tried again after the next cycle, and the sync itself goes on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from state.retention import Pruned
from state.runs import Key
from state.store import StateStore

log = structlog.get_logger(__name__)

EVERY = timedelta(days=1)


def prune_history(store: StateStore, retention_days: int, now: datetime) -> Pruned | None:
    """Prune what is older than `retention_days` when a day has passed since the last full
    prune; None when nothing was due (or retention is off, 0 days)."""
    if retention_days <= 0:
        return None
    try:
        if not _due(store, now):
            return None
        pruned = store.retention.prune(now - timedelta(days=retention_days))
        if not pruned.more_left:  # a capped prune goes on after the next cycle, not next day
            store.runs.set_value(Key.HISTORY_PRUNED, now.isoformat(), now)
    except Exception as exc:  # never the cycle's failure; the next cycle tries again
        log.warning("history not pruned; retried after the next cycle",
                    error=type(exc).__name__)
        return None
    if pruned.runs or pruned.latency:
        log.info("history pruned", retention_days=retention_days, **pruned.as_dict())
    return pruned


def _due(store: StateStore, now: datetime) -> bool:
    last = store.runs.get_value(Key.HISTORY_PRUNED)
    try:
        when = datetime.fromisoformat(last) if isinstance(last, str) else None
    except ValueError:  # a hand-edited value: prune, and write a good one
        when = None
    # A clock that went back (a restored DB, a sandbox clock) must not stop pruning for good.
    return when is None or when.tzinfo is None or not (now - EVERY < when <= now)
