"""The reports by name: what `syncagent report NAME` (and later a web page) can show."""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from syncagent.errors import ConfigError
from syncagent.reports import health, impact, leads, marketing, sales
from syncagent.reports.data import ReportSource
from syncagent.reports.model import Options, Period, ReportResult

ReportFunction = Callable[[ReportSource, Period, Options], ReportResult]
_paused = threading.Lock()
_running = 0
_was_enabled = True


def without_gc_passes(report: ReportFunction) -> ReportFunction:
    """The report, with Python's cyclic garbage collector paused while it runs: a report
    makes hundreds of thousands of rows that hold no cycles, and the collector's passes over
    them cost a third of its time. Reports running at once (web requests) share the pause;
    the last to finish ends it. Memory is reclaimed by reference counting all along."""

    @functools.wraps(report)
    def run(source: ReportSource, period: Period, options: Options) -> ReportResult:
        global _running, _was_enabled
        with _paused:
            if _running == 0:
                _was_enabled = gc.isenabled()
            _running += 1
            gc.disable()
        try:
            return report(source, period, options)
        finally:
            with _paused:
                _running -= 1
                if _running == 0 and _was_enabled:
                    gc.enable()
    return run


@dataclass(frozen=True)
class Report:
    name: str
    summary: str
    compute: ReportFunction = field(repr=False)
    needs_rules: bool = False     # reads the mapping files (the lead source field)

    @property
    def run(self) -> ReportFunction:
        """What the CLI and the web page call: the report, without the collector's passes."""
        return without_gc_passes(self.compute)


REPORTS: dict[str, Report] = {r.name: r for r in (
    Report("leads-over-time", "New leads, MQLs, SALs and SQLs per day, week or month.",
           leads.leads_over_time, needs_rules=True),
    Report("funnel", "Leads of the period per stage: reached, now, conversion, time in stage.",
           leads.funnel),
    Report("sources", "Per lead source: volume, MQL and SQL rates, opportunities, "
           "disqualification reasons.", marketing.sources, needs_rules=True),
    Report("campaigns", "Per campaign: responses and the MQLs, SQLs and opportunities "
           "they influenced.", marketing.campaigns),
    Report("clean-your-room", "Each rep's open MQLs and SALs past their SLA or untouched.",
           sales.clean_your_room),
    Report("mql-to-sal", "MQL to SAL per rep and pool: acceptance, time to accept, SLA steps.",
           sales.mql_to_sal),
    Report("sync-health", "Cycles, API calls against the budget, outbox, dead letters, "
           "data quality.", health.sync_health),
    Report("rules-impact", "What proposed mapping files (--proposed DIR) would change: "
           "grades, stages, segments, owners, tracks, scores.", impact.rules_impact,
           needs_rules=True),
)}


def report_named(name: str) -> Report:
    report = REPORTS.get(name)
    if report is None:
        raise ConfigError(f"there is no report named '{name}'",
                          hint="Reports: " + ", ".join(REPORTS) + ".")
    return report
