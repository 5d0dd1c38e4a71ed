"""The reports marketing looks at: which lead sources and which campaigns bring leads that
sales takes on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from syncagent.engine.model import STAGE_RANK
from syncagent.reports.data import PersonFacts, ReportSource, StageStep
from syncagent.reports.model import Options, Period, ReportResult, Table, rate
from syncagent.reports.stages import FUNNEL, first_reach

NO_SOURCE = "(none)"
MILESTONES = (("MQL", "mqls"), ("SQL", "sqls"), ("Opportunity", "opportunities"))
# The only steps `first_reach` needs for those milestones: into a funnel stage from MQL up.
REACHING = tuple(s for s in FUNNEL if STAGE_RANK[s] >= STAGE_RANK[MILESTONES[0][0]])
CAMPAIGN_OBJECT, CAMPAIGN_NAME = "Campaign", "Name"  # campaign records, where one is mirrored


@dataclass
class _Reach:
    leads: int = 0
    mqls: int = 0
    sqls: int = 0
    opportunities: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def count(self, person: PersonFacts, steps: Sequence[StageStep],
              after: datetime | None = None) -> None:
        """Add a person (``steps``: their stage history); with ``after``, only milestones
        reached at or after it count."""
        self.leads += 1
        for stage, attr in MILESTONES:
            at = first_reach(person, steps, stage)
            if at is not None and (after is None or at >= after):
                setattr(self, attr, getattr(self, attr) + 1)


def _reasons_text(reasons: Counter[str]) -> str:
    return "; ".join(f"{reason}: {n}" for reason, n in
                     sorted(reasons.items(), key=lambda item: (-item[1], item[0])))


def sources(source: ReportSource, period: Period, options: Options) -> ReportResult:
    """Per lead source, for the leads created in the period: volume, how many reached MQL,
    SQL and Opportunity (and the rates), and the reasons reps gave when they disqualified
    them, most frequent first."""
    cohort = source.cohort(period)
    history = source.history_of(cohort, REACHING)
    by_source: dict[str, _Reach] = {}
    for person in cohort.values():
        by_source.setdefault(person.source or NO_SOURCE, _Reach()).count(
            person, history.get(person.person_id, []))
    for verdict in source.feedback_of(cohort, "disqualified"):
        judged = cohort.get(verdict.person_id)
        if judged is not None:
            reach = by_source[judged.source or NO_SOURCE]
            reach.reasons[verdict.reason or "(no reason)"] += 1
    table = Table("sources", ("source", "leads", "mqls", "mql_rate", "sqls", "sql_rate",
                              "opportunities", "disqualified", "disqualify_reasons"))
    for name, reach in sorted(by_source.items(), key=lambda item: (-item[1].leads, item[0])):
        table.add(name, reach.leads, reach.mqls, rate(reach.mqls, reach.leads), reach.sqls,
                  rate(reach.sqls, reach.leads), reach.opportunities,
                  sum(reach.reasons.values()), _reasons_text(reach.reasons))
    return ReportResult("sources", period, [table], notes=[
        "Rates are of the leads created in the period; a stage reached later still counts."])


def campaigns(source: ReportSource, period: Period, options: Options) -> ReportResult:
    """Per campaign, the responses in the period and the people who responded; of those,
    how many reached MQL, SQL and Opportunity at or after their first response in the
    period (the campaign influenced them)."""
    first: dict[tuple[str, int], datetime] = {}
    responses: Counter[str] = Counter()
    for activity in source.activities_between(["campaign_response"], period):
        if activity.campaign is None:
            continue
        responses[activity.campaign] += 1
        key = (activity.campaign, activity.person_id)
        first[key] = min(first.get(key, activity.occurred_at), activity.occurred_at)
    responders = {pid for _, pid in first}
    people = source.persons(responders, records=False)   # MQL and later: decisions do
    history = source.history_of(responders, REACHING)
    by_campaign: dict[str, _Reach] = {}
    for (campaign, pid), at in first.items():
        person = people.get(pid)
        if person is not None:
            by_campaign.setdefault(campaign, _Reach()).count(
                person, history.get(pid, []), after=at)
    names = source.names(CAMPAIGN_OBJECT, CAMPAIGN_NAME) if responses else {}
    table = Table("campaigns", ("campaign", "responses", "people", "mqls", "sqls",
                                "opportunities"))
    for campaign, count in sorted(responses.items(), key=lambda item: (-item[1], item[0])):
        reach = by_campaign.get(campaign, _Reach())
        table.add(names.get(campaign, campaign), count, reach.leads, reach.mqls, reach.sqls,
                  reach.opportunities)
    return ReportResult("campaigns", period, [table])
