"""Sync health: the agent's own work, as an admin checks it."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from statistics import median
from typing import Any

from state.runs import Key
from syncagent.reports.data import ReportSource
from syncagent.reports.model import Options, Period, ReportResult, Table, rate

STATUSES = ("ok", "partial", "failed", "stopped", "running")


def _cycles(runs: list[Any], period: Period) -> Table:
    table = Table("cycles", ("bucket", "cycles", *STATUSES, "median_seconds", "max_seconds"))
    statuses: dict[date, Counter[str]] = {}
    spans: dict[date, list[timedelta]] = {}
    for run in runs:
        bucket = period.bucket_of(run.started_at)
        statuses.setdefault(bucket, Counter())[run.status] += 1
        if run.finished_at is not None:
            spans.setdefault(bucket, []).append(run.finished_at - run.started_at)
    for bucket in period.buckets():
        counted = statuses.get(bucket, Counter())
        durations = spans.get(bucket, [])
        seconds = [d.total_seconds() for d in durations]
        table.add(bucket, sum(counted.values()), *(counted[s] for s in STATUSES),
                  round(median(seconds), 1) if seconds else None,
                  round(max(durations).total_seconds(), 1) if durations else None)
    return table


def _api_calls(runs: list[Any], period: Period, usage: dict[str, Any]) -> Table:
    """Calls per system and day, against the agent's daily budget as it stands now."""
    table = Table("api calls per day", ("day", "system", "calls", "daily_budget",
                                        "share_of_budget"))
    calls: Counter[tuple[date, str]] = Counter()
    for run in runs:
        for system, count in (run.api_calls or {}).items():
            if isinstance(count, int):
                calls[(run.started_at.date(), system)] += count
    for (day, system), count in sorted(calls.items()):
        budget = ((usage.get(system) or {}).get("budget") or {}).get("agent_limit")
        table.add(day, system, count, budget,
                  rate(count, budget) if isinstance(budget, int) else None)
    return table


def sync_health(source: ReportSource, period: Period, options: Options) -> ReportResult:
    """Cycles per bucket (by status, with durations), API calls per system and day against
    the budget, change-to-visible latency per system and day, the outbox now, dead letters
    by error code and open data-quality items."""
    runs = source.runs(period.since, period.until)
    usage = source.store.runs.get_value(Key.API_USAGE, {}) or {}
    outbox = Table("outbox", ("status", "rows"))
    for status, count in sorted(source.store.outbox.counts().items()):
        outbox.add(status, count)
    dead = Table("dead letters", ("error_code", "rows"))
    for code, count in sorted(source.dead_letters_by_code().items()):
        dead.add(code, count)
    quality = Table("data quality", ("kind", "open_items"))
    for kind, count in sorted(source.open_quality_items().items()):
        quality.add(kind, count)
    latency = Table("change to visible", ("day", "system", "writes", "p50_seconds",
                                          "p95_seconds"))
    for figures in source.latency(period.since, period.until):
        latency.add(figures.day, figures.system, figures.writes,
                    round(figures.p50_seconds, 1), round(figures.p95_seconds, 1))
    return ReportResult("sync-health", period, [
        _cycles(runs, period), _api_calls(runs, period, usage), latency, outbox, dead,
        quality],
        notes=["Outbox, dead letters and data quality are as of now; cycles, calls and "
               "latency are of the period.",
               "Change to visible: from a remote change (the newest modification of the "
               "person's records in the other systems) to the agent's write of it being done, "
               "per system written to and UTC day (nearest-rank percentiles). Writes that "
               "carry no remote change (decay, SLA steps, a person's first evaluation) are "
               "not counted."])
