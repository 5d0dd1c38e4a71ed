"""The reports by name: what `syncagent report NAME` (and later a web page) can show."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from syncagent.errors import ConfigError
from syncagent.reports import health, impact, leads, marketing, sales
from syncagent.reports.data import ReportSource
from syncagent.reports.model import Options, Period, ReportResult

ReportFunction = Callable[[ReportSource, Period, Options], ReportResult]


@dataclass(frozen=True)
class Report:
    name: str
    summary: str
    run: ReportFunction
    needs_rules: bool = False     # reads the mapping files (the lead source field)


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
