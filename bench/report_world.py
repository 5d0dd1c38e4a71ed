"""A large state DB for the reports bench, seeded through the state store's own methods.

Persons are created over the year before NOW; about two thirds have a Salesforce lead, half a
HubSpot contact (every person at least one). Each walks part of the funnel (Lead, then MQL,
SAL, SQL, Opportunity, Customer; some are disqualified or recycled on the way), with the stage
history, SLA timers, reps' feedback and activities (page views, e-mail, forms, campaign
responses, reps' calls and meetings) that walk leaves in a real state DB, plus a year of
cycles, an outbox with dead letters and data-quality items. Fixed seed: the same DB each run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.registry import profile_of
from state.deadletters import RefusedPart
from state.flags import Flag
from state.handoff import FeedbackRow, HandoffRows, StageChange, TimerRow
from state.store import ActivityRow, CursorState, MirrorRow, NewOutboxRow, StateStore

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
YEAR = timedelta(days=365)
REPS = [f"005{n:015d}" for n in range(1, 31)]
POOLS = ("pool-east", "pool-west", "pool-enterprise", "territory-emea")
SF_SOURCES = ("Web", "Advertisement", "Other", "Partner Referral", "Trade Show", "")
HS_SOURCES = ("ORGANIC_SEARCH", "PAID_SEARCH", "PAID_SOCIAL", "REFERRALS", "EMAIL_MARKETING",
              "DIRECT_TRAFFIC", "OFFLINE")
CAMPAIGNS = [f"701{n:015d}" for n in range(1, 13)]
HS_CAMPAIGNS = [f"hs-{n}" for n in range(1, 7)]
BACKGROUND = ("page_view", "page_view", "page_view", "email_open", "email_click",
              "form_submission")
TOUCHES = ("call_attempted", "call_connected", "meeting_set", "task_completed")
FUNNEL = ("MQL", "SAL", "SQL", "Opportunity", "Customer")
ONWARD = {"MQL": 0.35, "SAL": 0.6, "SQL": 0.5, "Opportunity": 0.4, "Customer": 0.3}
PAGE = 2_000
CODES = ("INVALID_EMAIL_ADDRESS", "REQUIRED_FIELD_MISSING", "FIELD_CUSTOM_VALIDATION")


@dataclass
class Person:
    pid: int
    created: datetime
    lead: str | None
    contact: str | None
    owner: str | None = None
    pool: str | None = None
    stage: str = "Lead"
    mql_date: datetime | None = None
    steps: list[tuple[datetime, str | None, str, str]] = field(default_factory=list)


def seed(store: StateStore, persons: int, activities_per_person: int,
         rng_seed: int = 15) -> dict[str, int]:
    """Fill a migrated, empty store; returns how many rows of each kind it wrote."""
    rng = random.Random(rng_seed)
    emails = [f"p{i}@example{i % 97}.com" for i in range(persons)]
    ids = store.persons.create(emails, now=NOW - YEAR)
    people = [_walk(rng, pid, i) for i, pid in enumerate(ids)]
    sizes = {"persons": len(people)}
    sizes["mirror_records"] = _mirror(store, rng, people, emails)
    sizes["activities"] = _activities(store, rng, people, activities_per_person)
    sizes.update(_decisions(store, rng, people))
    sizes.update(_operations(store, rng))
    return sizes


def _walk(rng: random.Random, pid: int, index: int) -> Person:
    created = NOW - YEAR + timedelta(seconds=rng.randint(0, int(YEAR.total_seconds()) - 1))
    has_lead = rng.random() < 0.66
    person = Person(pid, created, f"00Q{index:015d}" if has_lead else None,
                    f"{index + 1000}" if (not has_lead or rng.random() < 0.5) else None)
    person.steps.append((created, None, "Lead", "rule"))
    moment, stage = created, "Lead"
    for target in FUNNEL:
        if rng.random() >= ONWARD[target]:
            break
        moment += timedelta(hours=rng.randint(2, 24 * 20))
        if moment >= NOW:
            break
        if target == "MQL":
            person.mql_date = moment
            person.owner, person.pool = rng.choice(REPS), rng.choice(POOLS)
        person.steps.append((moment, stage, target, "rule" if target == "MQL" else "rep"))
        stage = target
        if target in ("MQL", "SAL") and rng.random() < 0.15:   # disqualified or recycled
            moment += timedelta(hours=rng.randint(1, 24 * 7))
            if moment < NOW:
                side = rng.choice(("Disqualified", "Recycled"))
                person.steps.append((moment, stage, side, "rep"))
                stage = side
            break
    person.stage = stage
    return person


def _mirror(store: StateStore, rng: random.Random, people: list[Person],
            emails: list[str]) -> int:
    rows: list[MirrorRow] = []
    for person, email in zip(people, emails, strict=True):
        stamp = max(person.steps[-1][0], person.created) + timedelta(minutes=5)
        if person.lead:
            rows.append(MirrorRow("salesforce", "Lead", person.lead, {
                "Id": person.lead, "Email": email, "FirstName": "Pat", "LastName": f"P{person.pid}",
                "Company": f"Company {person.pid % 5000}", "Title": "VP Marketing",
                "LeadSource": rng.choice(SF_SOURCES), "Status": "Open - Not Contacted",
                "OwnerId": person.owner or "00G000000000001", "Industry": "Software",
                "NumberOfEmployees": rng.randint(1, 9000), "Country": "US",
                "CreatedDate": person.created.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                "LastModifiedDate": stamp.isoformat(), "SystemModstamp": stamp.isoformat(),
                "Lead_Score__c": rng.randint(0, 150), "Lead_Grade__c": rng.choice("ABCDF"),
                "Lifecycle_Stage__c": person.stage}, stamp, email_key=email))
        if person.contact:
            created = person.created + timedelta(minutes=rng.randint(0, 600))
            rows.append(MirrorRow("hubspot", "contacts", person.contact, {
                "hs_object_id": person.contact, "email": email, "firstname": "Pat",
                "lastname": f"P{person.pid}", "company": f"Company {person.pid % 5000}",
                "jobtitle": "VP Marketing", "hs_analytics_source": rng.choice(HS_SOURCES),
                "lifecyclestage": "marketingqualifiedlead", "hs_lead_status": "NEW",
                "createdate": str(int(created.timestamp() * 1000)) if rng.random() < 0.3
                else created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "lastmodifieddate": stamp.isoformat(), "hubspotscore": rng.randint(0, 150)},
                stamp, email_key=email))
    rows += [MirrorRow("salesforce", "User", rep, {"Id": rep, "Name": f"Rep {n}"}, NOW - YEAR)
             for n, rep in enumerate(REPS)]
    rows += [MirrorRow("salesforce", "Campaign", c, {"Id": c, "Name": f"Campaign {n}"},
                       NOW - YEAR) for n, c in enumerate(CAMPAIGNS)]
    rows = [_as_pulled(row) for row in rows]
    for start in range(0, len(rows), PAGE):
        store.mirror.upsert(rows[start:start + PAGE], now=NOW)
    store.persons.link([(r.system, r.object, r.remote_id, p.pid, "email")
                        for p in people for r in _records_of(p)], now=NOW - YEAR)
    return len(rows)


def _as_pulled(row: MirrorRow) -> MirrorRow:
    """The row with its creation time, as the pull stores it (pipeline.pull.mirror_row)."""
    profile = profile_of(row.system)
    return replace(row, created_at=profile.created_at(row.fields) if profile else None)


@dataclass(frozen=True)
class _Ref:
    system: str
    object: str
    remote_id: str


def _records_of(person: Person) -> Iterator[_Ref]:
    if person.lead:
        yield _Ref("salesforce", "Lead", person.lead)
    if person.contact:
        yield _Ref("hubspot", "contacts", person.contact)


def _activities(store: StateStore, rng: random.Random, people: list[Person],
                per_person: int) -> int:
    page: list[ActivityRow] = []
    written = 0
    for person in people:
        for activity in _activities_of(rng, person, per_person):
            page.append(activity)
            if len(page) >= PAGE:
                written += _commit(store, page)
                page = []
    return written + _commit(store, page)


def _activities_of(rng: random.Random, person: Person, per_person: int
                   ) -> Iterator[ActivityRow]:
    ref = next(_records_of(person))
    span = max(1, int((NOW - person.created).total_seconds()))
    for n in range(rng.randint(0, 2 * per_person)):
        when = person.created + timedelta(seconds=rng.randint(0, span - 1))
        kind = rng.choice(BACKGROUND)
        details: dict[str, Any] = {"url": f"https://example.com/blog/{n % 50}"}
        if rng.random() < 0.08:
            kind = "campaign_response"
            details = {"campaign": rng.choice(CAMPAIGNS if ref.system == "salesforce"
                                              else HS_CAMPAIGNS)}
        # as the pull stores them: by the record they point at, with no person id
        yield ActivityRow(ref.system, f"{person.pid}-{n}", kind, when, ref.object,
                          ref.remote_id, details)
    if person.mql_date is not None:
        for n in range(rng.randint(0, 4)):
            when = person.mql_date + timedelta(hours=rng.randint(1, 24 * 14))
            if when < NOW:
                yield ActivityRow(ref.system, f"{person.pid}-t{n}", rng.choice(TOUCHES), when,
                                  ref.object, ref.remote_id, {})


def _commit(store: StateStore, page: list[ActivityRow]) -> int:
    if page:
        store.commit_page("bench.activities", [], page, CursorState(page[-1].occurred_at),
                          now=NOW)
    return len(page)


def _decisions(store: StateStore, rng: random.Random, people: list[Person]) -> dict[str, int]:
    sizes = {"decisions": 0, "stage_history": 0, "sla_timers": 0, "feedback": 0}
    for start in range(0, len(people), PAGE):
        chunk = people[start:start + PAGE]
        decisions = [_decision(rng, p) for p in chunk]
        handoff = HandoffRows()
        for person in chunk:
            handoff.history += [StageChange(f"{person.pid}:{n}", person.pid, at, before, after,
                                            cause, None)
                                for n, (at, before, after, cause) in enumerate(person.steps)]
            handoff.timers += _timers(rng, person)
            handoff.feedback += _feedback(rng, person)
        store.commit_evaluation([], decisions, {p.pid: None for p in chunk}, {}, now=NOW,
                                handoff=handoff)
        sizes["decisions"] += len(decisions)
        sizes["stage_history"] += len(handoff.history)
        sizes["sla_timers"] += len(handoff.timers)
        sizes["feedback"] += len(handoff.feedback)
    return sizes


def _decision(rng: random.Random, person: Person) -> dict[str, Any]:
    return {"person_id": person.pid, "grade": rng.choice("ABCDF"),
            "score": float(rng.randint(0, 180)), "segment": rng.choice(("Hot", "Warm", "Cold")),
            "stage": person.stage, "owner": person.owner, "track": None,
            "mql_date": person.mql_date,
            "reasons": {"owner": {"rule": person.pool}, "grade": {"because": ["title"]}},
            "evaluated_at": NOW - timedelta(hours=1)}


def _timers(rng: random.Random, person: Person) -> list[TimerRow]:
    if person.mql_date is None:
        return []
    out = []
    for kind, hours in (("remind", 4), ("escalate", 72), ("reassign", 120)):
        due = person.mql_date + timedelta(hours=hours)
        accepted = any(step[2] != "MQL" and step[0] <= due for step in person.steps[2:])
        status = "cancelled" if accepted else ("fired" if due <= NOW else "pending")
        out.append(TimerRow(f"sla:{person.pid}:{kind}", person.pid, kind, person.mql_date, due,
                            person.owner, status, due if status == "fired" else None))
        if accepted or rng.random() < 0.3:
            break
    return out


def _feedback(rng: random.Random, person: Person) -> list[FeedbackRow]:
    at, _before, after, _ = person.steps[-1]
    if after not in ("Disqualified", "Recycled"):
        return []
    return [FeedbackRow(f"fb:{person.pid}", person.pid, at, after.lower(),
                        rng.choice(("Not a Fit", "Timing", "No Budget", None)),
                        "Unqualified", None, None, person.owner)]


def _operations(store: StateStore, rng: random.Random) -> dict[str, int]:
    """Cycles every 15 minutes over the last 30 days, an outbox, dead letters, flags."""
    cycles = 0
    start = NOW - timedelta(days=30)
    while start < NOW - timedelta(minutes=15):
        run = store.runs.start("cycle", "bench", now=start)
        status = "failed" if rng.random() < 0.02 else "ok"
        store.runs.finish(run, status=status, counts={"pulled": rng.randint(0, 400)},
                          api_calls={"salesforce": rng.randint(3, 40),
                                     "hubspot": rng.randint(2, 30)},
                          errors=[], now=start + timedelta(seconds=rng.randint(5, 90)))
        cycles += 1
        start += timedelta(minutes=15)
    rows = [NewOutboxRow("salesforce", "Lead", "update", {"Lead_Score__c": n}, f"bench-{n}",
                         remote_id=f"00Q{n:015d}") for n in range(300)]
    store.outbox.enqueue(rows, now=NOW)
    store.outbox.add_refused([RefusedPart("salesforce", "Lead", f"00Q{n:015d}", None,
                                          {"Email": "bad"}, rng.choice(CODES), "refused")
                              for n in range(60)], now=NOW)
    store.flags.many([Flag("ambiguous_match", f"amb-{n}", {"email": f"x{n}@example.com"})
                      for n in range(40)], now=NOW)
    return {"cycles": cycles, "outbox": len(rows), "dead_letters": 60, "data_quality": 40}
