"""Is the agent healthy? The judgement behind `syncagent status --check`, from run history.

Pure: it reads the summary `StateStore.status_summary` returns and says why the agent is
unhealthy, if it is. Exit codes: 0 healthy, 1 unhealthy, 2 cannot tell (no state DB).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from syncagent.settings import HealthSettings

HEALTHY, UNHEALTHY, UNKNOWN = 0, 1, 2
GRACE_SECONDS = 60  # a cycle's own duration, on top of the intervals


def unhealthy_reasons(summary: dict[str, Any], now: datetime, interval_seconds: int,
                      health: HealthSettings) -> list[str]:
    """Why the agent is unhealthy: an empty list means healthy."""
    finished = [run for run in summary["runs"] if run["finished_at"]]  # newest first
    if not finished:
        # A first backfill can take longer than any health-check start period; while its
        # process still holds the lease it is working, not sick.
        return [] if _first_cycle_under_way(summary, now) else ["no cycle has finished yet"]
    last = finished[0]
    reasons = []
    if last["status"] == "failed":
        reasons.append(f"the last cycle (run {last['id']}) failed: {_first_error(last)}")
    completed = summary.get("last_completed_at")
    window = timedelta(seconds=health.stale_intervals * interval_seconds + GRACE_SECONDS)
    if completed is None:
        reasons.append("no cycle has completed yet (every run failed or was stopped)")
    elif now - completed > window:
        reasons.append(f"the last completed cycle finished at {completed:%Y-%m-%d %H:%M:%S} "
                       f"UTC, more than {health.stale_intervals} intervals ago")
    reasons += _dead_letters_grew(finished)
    rejected = int((last.get("counts") or {}).get("rejected") or 0)
    if rejected > health.max_rejected:
        reasons.append(f"the last cycle rejected {rejected} record(s), more than "
                       f"health.max_rejected={health.max_rejected} (see `syncagent errors`)")
    return reasons


def _first_cycle_under_way(summary: dict[str, Any], now: datetime) -> bool:
    """A run is in progress and its holder still holds an unexpired lease (a killed process's
    run stays "running" for ever, but its lease expires)."""
    running = {run["holder"] for run in summary["runs"] if run["status"] == "running"}
    return any(lease["holder"] in running and _utc(lease["expires_at"]) > now
               for lease in summary.get("leases") or [])


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dead_letters_grew(finished: list[dict[str, Any]]) -> list[str]:
    counts = [(run.get("counts") or {}).get("dead_letters") for run in finished[:2]]
    now_dead = counts[0]
    before = counts[1] if len(counts) > 1 else 0
    if now_dead is None or before is None or now_dead <= before:
        return []
    return [f"dead letters grew from {before} to {now_dead} in the last cycle "
            "(see `syncagent errors`)"]


def _first_error(run: dict[str, Any]) -> str:
    errors = run.get("errors") or []
    if not errors:
        return "no error recorded"
    first = errors[0]
    return str(first.get("message") or first.get("error") or first) if isinstance(
        first, dict) else str(first)
