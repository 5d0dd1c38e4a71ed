"""A small seeded state DB whose every report figure is worked out by hand in the tests.

The world, November 2026 (weeks start on Monday: 2, 9, 16, 23; nothing happens in the week
of the 16th), reports run at NOW = Monday 30 November 12:00 UTC:

- P1 Salesforce Lead 00Q1, source Web, created 3 Nov 10:00, Lead at once, MQL 4 Nov 09:00,
  accepted (SAL) 4 Nov 15:00, SQL 10 Nov 15:00; owner Ava (pool-east); responded to
  campaign 701A (named "Webinar Nov") on 3 Nov 09:00.
- P2 Salesforce Lead 00Q2, source Advertisement, created 5 Nov 12:00, MQL 6 Nov 12:00 and
  still an MQL; owner Ava (pool-east); its remind and escalate timers fired; no rep touch;
  responded to 701A on 7 and 8 Nov (after its MQL), and once on 1 Oct (outside the period).
- P3 HubSpot contact 501 only, hs_analytics_source PAID_SEARCH (Advertisement in
  fields.yaml), created 24 Nov 08:00, MQL 25 Nov 10:00, disqualified by Bo 26 Nov 10:00
  ("Not a Fit"); responded to HubSpot campaign hs-55 on 24 Nov 09:00; no routing rule.
- P4 Salesforce Lead 00Q4, source Web, created 20 Oct (before the period), MQL 23 Nov 09:00,
  SAL 23 Nov 11:00; owner Bo (pool-west); a call 29 Nov; a cancelled remind (due 23 Nov)
  and a pending qualify (due 2 Dec).
- P5 Salesforce Lead 00Q5, source Web, created 10 Nov 08:00, a Lead with a queue owner.
- Users: Ava (005A), Bo (005B) and Cy (005C, who holds no open lead).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.registry import profile_of
from state import models as m
from state.runs import Key
from state.store import StateStore
from syncagent.engine.loader import load_rules
from syncagent.reports import Options, Period, ReportSource

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NOVEMBER = Period(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC), "week")
SEEN = datetime(2026, 11, 28, tzinfo=UTC)   # when the agent first linked every person


def at(day: int, hour: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def record(system: str, object_name: str, rid: str, fields: dict[str, Any],
           deleted: bool = False) -> m.MirrorRecord:
    """A mirror row as the pull stores it (with its creation time read by its profile)."""
    profile = profile_of(system)
    return m.MirrorRecord(system=system, object=object_name, remote_id=rid, fields=fields,
                          modstamp=SEEN, deleted=deleted, last_seen_at=SEEN, agent_written={},
                          created_at=profile.created_at(fields) if profile else None)


def _sf(object_name: str, rid: str, **fields: Any) -> m.MirrorRecord:
    return record("salesforce", object_name, rid, {"Id": rid, **fields})


def _person(pid: int, record: m.MirrorRecord) -> list[Any]:
    return [m.Person(id=pid, created_at=SEEN, dirty=False), record,
            m.PersonLink(system=record.system, object=record.object,
                         remote_id=record.remote_id, person_id=pid, linked_by="email",
                         created_at=SEEN)]


def _decision(pid: int, stage: str, owner: str | None, rule: str | None = None,
              mql: datetime | None = None) -> m.Decision:
    return m.Decision(person_id=pid, grade="B", score=100.0, segment="Hot", stage=stage,
                      owner=owner, track=None, mql_date=mql,
                      reasons={"owner": {"rule": rule}}, evaluated_at=SEEN)


def _steps(pid: int, *steps: tuple[datetime, str | None, str, str]) -> list[m.StageHistory]:
    return [m.StageHistory(key=f"{pid}:{n}", person_id=pid, at=when, from_stage=before,
                           to_stage=after, cause=cause, actor=None, detail={})
            for n, (when, before, after, cause) in enumerate(steps)]


def _timer(pid: int, kind: str, started: datetime, due: datetime, status: str
           ) -> m.SlaTimerRow:
    return m.SlaTimerRow(key=f"sla:{pid}:{kind}", person_id=pid, kind=kind, started_at=started,
                         due_at=due, recipient=None, status=status, detail={})


def _activity(pid: int, sid: str, kind: str, when: datetime, campaign: str | None = None,
              system: str = "salesforce") -> m.Activity:
    return m.Activity(system=system, source_id=sid, kind=kind, occurred_at=when,
                      person_id=pid, details={"campaign": campaign} if campaign else {})


def _world() -> list[Any]:
    hubspot = record("hubspot", "contacts", "501", {"createdate": "2026-11-24T08:00:00.000Z",
                                                    "hs_analytics_source": "PAID_SEARCH"})
    return [
        *_person(1, _sf("Lead", "00Q1", CreatedDate="2026-11-03T10:00:00.000+0000",
                        LeadSource="Web")),
        *_person(2, _sf("Lead", "00Q2", CreatedDate="2026-11-05T12:00:00.000+0000",
                        LeadSource="Advertisement")),
        *_person(3, hubspot),
        *_person(4, _sf("Lead", "00Q4", CreatedDate="2026-10-20T12:00:00.000+0000",
                        LeadSource="Web")),
        *_person(5, _sf("Lead", "00Q5", CreatedDate="2026-11-10T08:00:00.000+0000",
                        LeadSource="Web")),
        *(_sf("User", uid, Name=name) for uid, name in
          (("005A", "Ava"), ("005B", "Bo"), ("005C", "Cy"))),
        _sf("Campaign", "701A", Name="Webinar Nov"),
        _decision(1, "SQL", "005A", "pool-east", at(4, 9)),
        _decision(2, "MQL", "005A", "pool-east", at(6, 12)),
        _decision(3, "Disqualified", "005B", None, at(25, 10)),
        _decision(4, "SAL", "005B", "pool-west", at(23, 9)),
        _decision(5, "Lead", "00GQUEUE"),
        *_steps(1, (at(3, 10), None, "Lead", "rule"), (at(4, 9), "Lead", "MQL", "rule"),
                (at(4, 15), "MQL", "SAL", "rep"), (at(10, 15), "SAL", "SQL", "rep")),
        *_steps(2, (at(5, 12), None, "Lead", "rule"), (at(6, 12), "Lead", "MQL", "rule")),
        *_steps(3, (at(24, 8), None, "Lead", "rule"), (at(25, 10), "Lead", "MQL", "rule"),
                (at(26, 10), "MQL", "Disqualified", "rep")),
        *_steps(4, (at(20, 12, month=10), None, "Lead", "rule"),
                (at(23, 9), "Lead", "MQL", "rule"), (at(23, 11), "MQL", "SAL", "rep")),
        *_steps(5, (at(10, 8), None, "Lead", "rule")),
        _timer(2, "remind", at(6, 12), at(6, 16), "fired"),
        _timer(2, "escalate", at(6, 12), at(9, 12), "fired"),
        _timer(4, "remind", at(23, 9), at(23, 13), "cancelled"),
        _timer(4, "qualify", at(23, 11), at(2, 11, month=12), "pending"),
        m.Feedback(key="fb3", person_id=3, at=at(26, 10), outcome="disqualified",
                   reason="Not a Fit", lead_status="Unqualified", lead_source="Advertisement",
                   campaign=None, owner="005B", detail={}),
        _activity(1, "cm1", "campaign_response", at(3, 9), "701A"),
        _activity(2, "cm2", "campaign_response", at(7, 9), "701A"),
        _activity(2, "cm3", "campaign_response", at(8, 9), "701A"),
        _activity(2, "cm0", "campaign_response", at(1, 9, month=10), "701A"),
        _activity(3, "ev9", "campaign_response", at(24, 9), "hs-55", system="hubspot"),
        _activity(4, "call4", "call_connected", at(29, 10)),
    ]


def seed(store: StateStore, rows: list[Any]) -> None:
    with store.sessions.write() as session:
        session.add_all(rows)


@pytest.fixture
def seeded(state_url: str) -> Iterator[StateStore]:
    """The world above in a migrated state DB (SQLite and Postgres)."""
    store = StateStore(state_url)
    store.upgrade()
    seed(store, _world())
    yield store
    store.dispose()


@pytest.fixture
def source(seeded: StateStore) -> ReportSource:
    return ReportSource(seeded, load_rules(MAPPINGS))


@pytest.fixture
def options() -> Options:
    return Options(now=NOW)


def add_runs(store: StateStore) -> None:
    """Three cycles (29 Nov: ok 30 s, with 30 pulled, 5 written to Salesforce and 1 rejected;
    failed 10 s; 30 Nov: ok 60 s), a budget with 19 calls used, an outbox."""
    seed(store, [
        m.Run(kind="cycle", started_at=at(29, 10), finished_at=at(29, 10).replace(second=30),
              status="ok", counts={"pulled": 30, "written": {"salesforce": 5, "hubspot": 0},
                                   "rejected": 1},
              api_calls={"salesforce": 12, "hubspot": 5}, errors=[]),
        m.Run(kind="cycle", started_at=at(29, 11), finished_at=at(29, 11).replace(second=10),
              status="failed", counts={}, api_calls={"salesforce": 3}, errors=[]),
        m.Run(kind="cycle", started_at=at(30, 9), finished_at=at(30, 9).replace(minute=1),
              status="ok", counts={}, api_calls={"salesforce": 4}, errors=[]),
        *(m.OutboxRow(system="salesforce", object="Lead", operation="update", fields={},
                      idempotency_key=f"k{n}", status=status, attempts=1, error_code=code,
                      next_attempt_at=NOW, created_at=NOW, updated_at=NOW)
          for n, (status, code) in enumerate((("pending", None), ("dead", "REQUIRED_FIELD"),
                                              ("dead", "REQUIRED_FIELD"),
                                              ("dead", "INVALID_EMAIL")))),
        m.DataQualityItem(kind="ambiguous_match", key="a1", detail={}, created_at=NOW),
        m.DataQualityItem(kind="ambiguous_match", key="a2", detail={}, created_at=NOW,
                          resolved=True),
    ])
    store.runs.set_value(Key.API_USAGE, {"salesforce": {"budget": {"agent_limit": 100,
                                                                   "agent_calls_24h": 19}}})
