"""The reports sales looks at: leads waiting too long ("clean your room") and how fast MQLs
are accepted (MQL to SAL), with the SLA steps the agent took."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from syncagent.engine.model import STAGE_RANK
from syncagent.reports.data import InStages, ReportSource, TimerFact
from syncagent.reports.model import Options, Period, ReportResult, Table, median_hours, rate
from syncagent.reports.stages import FUNNEL, OPEN_WITH_SALES, current_entry, entries

# What a rep does to a lead: these activity kinds count as touching it.
REP_TOUCHES = ("call_connected", "call_attempted", "meeting_set", "meeting_completed",
               "demo_completed", "task_completed")
SLA_STEPS = ("remind", "escalate", "reassign", "qualify", "qualify_late")
REACHING_MQL = tuple(s for s in FUNNEL if STAGE_RANK[s] >= STAGE_RANK["MQL"])


def _days(span: timedelta) -> float:
    return round(span.total_seconds() / 86_400, 1)


def _rep(source: ReportSource, owner: str | None) -> str:
    return source.users.get(owner or "", owner or "(no owner)")


def _overdue(timers: list[TimerFact], since: datetime | None, now: datetime) -> list[str]:
    """The SLA steps of the current hand-over that are due (fired or not) by now."""
    return sorted({t.kind for t in timers if t.status != "cancelled" and t.due_at <= now
                   and (since is None or t.started_at >= since)},
                  key=lambda kind: SLA_STEPS.index(kind) if kind in SLA_STEPS else 99)


def _since(moment: datetime | None, start: datetime | None) -> datetime | None:
    """``moment`` if it is at or after ``start`` (the last touch counts only in the stage)."""
    return moment if moment is not None and (start is None or moment >= start) else None


def clean_your_room(source: ReportSource, period: Period, options: Options) -> ReportResult:
    """Each rep's open MQLs and SALs that are past an SLA step or untouched (no call,
    meeting or completed task) for ``untouched_days`` or more, oldest first; and per rep how
    many leads they hold open and how many of those wait. A view of now: the period is not
    used."""
    now = options.now
    held_open = InStages(OPEN_WITH_SALES, owned=True)
    open_leads = source.in_stages(held_open, sources=False)
    history = source.history_of(held_open, into=OPEN_WITH_SALES)   # when they came in
    timers: dict[int, list[TimerFact]] = {}
    for timer in source.timers_of(held_open, due_by=now):   # what _overdue can count
        timers.setdefault(timer.person_id, []).append(timer)
    touched_at = source.last_activity(held_open, REP_TOUCHES)
    waiting = Table("waiting leads", ("rep", "person_id", "stage", "since", "age_days",
                                      "past_sla", "last_touch", "untouched_days", "record"))
    held: Counter[str] = Counter()
    late: Counter[str] = Counter()
    rows = []
    for person in open_leads:
        entered = current_entry(person, history.get(person.person_id, []))
        held[person.owner or ""] += 1
        overdue = _overdue(timers.get(person.person_id, []), entered, now)
        touched = _since(touched_at.get(person.person_id), entered)
        quiet = now - (touched or entered or person.created_at)
        if overdue or quiet >= timedelta(days=options.untouched_days):
            late[person.owner or ""] += 1
            rows.append((person, entered, overdue, touched, quiet))
    rows.sort(key=lambda r: (_rep(source, r[0].owner), r[1] or r[0].created_at))
    for person, entered, overdue, touched, quiet in rows:
        waiting.add(_rep(source, person.owner), person.person_id, person.stage, entered,
                    _days(now - entered) if entered else None, ", ".join(overdue), touched,
                    _days(quiet), person.record)
    reps = Table("reps", ("rep", "open_leads", "waiting"))
    for owner in sorted({*source.users, *held}, key=lambda o: _rep(source, o)):
        reps.add(_rep(source, owner), held[owner], late[owner])
    return ReportResult("clean-your-room", period, [reps, waiting], notes=[
        f"As of {now.isoformat()}; untouched: no call, meeting or completed task for "
        f"{options.untouched_days} days or more since the lead entered its stage."])


@dataclass
class _Tally:
    mqls: int = 0
    accepted: int = 0
    waits: list[timedelta] = field(default_factory=list)
    steps: Counter[str] = field(default_factory=Counter)

    def row(self) -> tuple[object, ...]:
        return (self.mqls, self.accepted, rate(self.accepted, self.mqls),
                median_hours(self.waits), self.steps["remind"], self.steps["escalate"],
                self.steps["reassign"])


def _first_mqls(source: ReportSource, period: Period) -> dict[int, datetime]:
    """person id -> their first MQL in the period: their first step reaching MQL in it, or
    (for a person with no stage history at all) their decision's MQL date."""
    first: dict[int, datetime] = {}
    for step in source.steps_between(period, REACHING_MQL):
        if entries([step], "MQL") and step.person_id not in first:
            first[step.person_id] = step.at   # steps come by person and time
    for pid, at in source.unstaged_mqls(period):
        first.setdefault(pid, at)
    return first


def mql_to_sal(source: ReportSource, period: Period, options: Options) -> ReportResult:
    """For the MQLs of the period (a person's first MQL in it), per rep and per routing
    pool: how many were accepted (reached SAL or beyond after it), the median hours to that,
    and the SLA reminders, escalations and reassignments their timers fired."""
    first = _first_mqls(source, period)
    people = source.persons(first, records=False)   # their owners: decisions say
    handed = {pid: (person, first[pid]) for pid, person in people.items()}
    pools = source.routing_rules(handed)
    history = source.history_of(handed)
    fired: dict[int, list[TimerFact]] = {}
    for timer in source.timers_of(handed, "fired"):
        fired.setdefault(timer.person_id, []).append(timer)
    by_rep: dict[str, _Tally] = {}
    by_pool: dict[str, _Tally] = {}
    for pid, (person, mql_at) in handed.items():
        accepted = [at for at in entries(history.get(pid, []), "SAL") if at >= mql_at]
        steps = Counter(t.kind for t in fired.get(pid, []) if t.started_at >= mql_at)
        for tally in (by_rep.setdefault(_rep(source, person.owner), _Tally()),
                      by_pool.setdefault(pools.get(pid, "(no pool)"), _Tally())):
            tally.mqls += 1
            tally.steps.update(steps)
            if accepted:
                tally.accepted += 1
                tally.waits.append(accepted[0] - mql_at)
    columns = ("mqls", "accepted", "acceptance_rate", "median_hours_to_accept", "reminders",
               "escalations", "reassignments")
    reps = Table("by rep", ("rep", *columns))
    for name, tally in sorted(by_rep.items()):
        reps.add(name, *tally.row())
    pool_table = Table("by pool", ("pool", *columns))
    for name, tally in sorted(by_pool.items()):
        pool_table.add(name, *tally.row())
    return ReportResult("mql-to-sal", period, [reps, pool_table], notes=[
        "A lead counts for the rep who owns it now (after any reassignment)."])
