"""Leads over time and the funnel: how many come in, and how far they get."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from itertools import pairwise

from syncagent.engine.model import STAGE_RANK
from syncagent.reports.data import PersonFacts, ReportSource
from syncagent.reports.model import Options, Period, ReportResult, Table, median_hours, rate
from syncagent.reports.stages import FUNNEL, SIDE, entries, reached_by

MILESTONES = ("MQL", "SAL", "SQL")
# The steps that can reach a milestone: into it or past it (a jump from Lead to SQL passes
# MQL and SAL too); `stages.entries` judges each.
REACHING_A_MILESTONE = tuple(s for s in FUNNEL if STAGE_RANK[s] >= STAGE_RANK[MILESTONES[0]])
NO_VALUE = "(none)"


def _group(person: PersonFacts, split: str) -> str:
    if split == "source":
        return person.source or NO_VALUE
    if split == "segment":
        return person.segment or NO_VALUE
    return "all"


def leads_over_time(source: ReportSource, period: Period, options: Options) -> ReportResult:
    """New leads, MQLs, SALs and SQLs per bucket, split by lead source, segment or nothing.
    A person counts once per bucket for each milestone they reached in it (a recycled lead
    that is an MQL again in a later bucket counts there again). Empty buckets are rows of
    zeros, so a quiet week shows as one."""
    counts: Counter[tuple[date, str, str]] = Counter()
    by_source = options.split == "source"  # only then are the persons' records read
    cohort = source.cohort(period, records=by_source)
    reached: set[tuple[int, date, str]] = set()
    for step in source.steps_between(period, REACHING_A_MILESTONE):
        for stage in MILESTONES:
            if entries([step], stage):
                reached.add((step.person_id, period.bucket_of(step.at), stage))
    for pid, mql_at in source.unstaged_mqls(period):
        reached.add((pid, period.bucket_of(mql_at), "MQL"))
    people = {**source.persons({pid for pid, _, _ in reached} - cohort.keys(),
                               records=by_source), **cohort}
    for person in cohort.values():
        counts[(period.bucket_of(person.created_at), _group(person, options.split),
                "new_leads")] += 1
    for pid, bucket, stage in reached:
        if pid in people:
            counts[(bucket, _group(people[pid], options.split), stage)] += 1
    groups = sorted({group for _, group, _ in counts}) or ["all"]
    table = Table("leads over time", ("bucket", options.split, "new_leads", "mqls", "sals",
                                      "sqls"))
    for bucket in period.buckets():
        for group in groups:
            table.add(bucket, group, *(counts[(bucket, group, name)]
                                       for name in ("new_leads", *MILESTONES)))
    return ReportResult("leads-over-time", period, [table], notes=[
        "A bucket starts on its first day (weeks on Monday), in UTC."])


def funnel(source: ReportSource, period: Period, options: Options) -> ReportResult:
    """Of the leads created in the period (the cohort): how many reached each stage, how
    many are there now, the conversion to the next stage, and the median hours a step into
    the stage lasted before the next step (a person still in the stage is not timed)."""
    people = source.cohort(period, records=False)
    cohort = list(people.values())
    history = source.history_of(people)
    reached: Counter[str] = Counter()
    now_at: Counter[str] = Counter(p.stage for p in cohort if p.stage)
    stays: dict[str, list[timedelta]] = {stage: [] for stage in (*FUNNEL, *SIDE)}
    for person in cohort:
        steps = history.get(person.person_id, [])
        rank = STAGE_RANK.get(person.stage or "", -1) if person.stage not in SIDE else -1
        passed = reached_by(steps)
        # where no step says when, a decision at or past a stage has reached it (see
        # stages.first_reach)
        reached.update(stage for stage in FUNNEL
                       if rank >= STAGE_RANK[stage] or stage in passed)
        for step, following in pairwise(steps):
            if step.to_stage in stays:
                stays[step.to_stage].append(following.at - step.at)
        reached.update(stage for stage in SIDE
                       if person.stage == stage or any(s.to_stage == stage for s in steps))
    table = Table("funnel", ("stage", "reached", "now", "to_next_stage", "median_hours"))
    for index, stage in enumerate((*FUNNEL, *SIDE)):
        next_stage = FUNNEL[index + 1] if index + 1 < len(FUNNEL) else None
        conversion = rate(reached.get(next_stage, 0), reached.get(stage, 0)) \
            if next_stage is not None else None
        table.add(stage, reached.get(stage, 0), now_at[stage], conversion,
                  median_hours(stays[stage]))
    return ReportResult("funnel", period, [table], notes=[
        f"Cohort: the {len(cohort)} leads created in the period.",
        "to_next_stage: the share of those reaching the stage who reached the next one."])
