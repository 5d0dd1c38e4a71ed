"""Every report on the seeded world of conftest.py, against figures worked out by hand there.

Worst inputs first: a person whose only record was deleted and whose creation time is
garbage, an empty state DB, a week with no leads, a rep with no open lead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from state import models as m
from state.store import StateStore
from syncagent.engine.loader import load_rules
from syncagent.reports import REPORTS, Options, Period, ReportSource
from syncagent.reports.health import sync_health
from syncagent.reports.leads import funnel, leads_over_time
from syncagent.reports.marketing import campaigns, sources
from syncagent.reports.model import RulesChange
from syncagent.reports.sales import clean_your_room, mql_to_sal
from tests.reports.conftest import MAPPINGS, NOVEMBER, NOW, SEEN, add_runs, at, record, seed


def _rows(result: Any, title: str | None = None) -> list[tuple[Any, ...]]:
    table = result.table(title) if title else result.tables[0]
    return [tuple(row[c] for c in table.columns) for row in table.rows]


def test_a_person_with_only_a_deleted_record_and_a_garbage_date_counts_from_first_sight(
        state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    gone = record("salesforce", "Lead", "00Q9", {"CreatedDate": "2026-11-03T10:00:00.000+0000",
                                                 "LeadSource": "Web"}, deleted=True)
    odd = record("salesforce", "Lead", "00Q8", {"CreatedDate": "yesterday", "LeadSource": ""})
    seed(store, [m.Person(id=9, created_at=SEEN, dirty=False), gone,
                 m.PersonLink(system="salesforce", object="Lead", remote_id="00Q9",
                              person_id=9, linked_by="email", created_at=SEEN),
                 m.Person(id=8, created_at=SEEN, dirty=False), odd,
                 m.PersonLink(system="salesforce", object="Lead", remote_id="00Q8",
                              person_id=8, linked_by="email", created_at=SEEN)])
    people = ReportSource(store).people
    store.dispose()
    assert (people[9].created_at, people[9].source, people[9].record) == (SEEN, None, None)
    assert (people[8].created_at, people[8].source) == (SEEN, None)
    assert people[8].record == "salesforce Lead 00Q8"


def test_every_report_runs_on_an_empty_state_db(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    rules = load_rules(MAPPINGS)
    source = ReportSource(store, rules)
    options = Options(now=NOW, change=RulesChange(rules))
    results = {name: r.run(source, NOVEMBER, options) for name, r in REPORTS.items()}
    store.dispose()
    over_time = results["leads-over-time"].tables[0].rows
    assert [(r["bucket"], r["source"], r["new_leads"]) for r in over_time] == [
        (date(2026, 11, d), "all", 0) for d in (2, 9, 16, 23)]
    assert all(r["reached"] == 0 and r["to_next_stage"] is None
               for r in results["funnel"].tables[0].rows)
    for name in ("sources", "campaigns", "mql-to-sal"):
        assert all(not t.rows for t in results[name].tables), name
    assert [r["persons"] for r in results["rules-impact"].table("summary").rows] == [0] * 5


def test_leads_over_time_by_source_with_a_week_of_no_leads(source: ReportSource,
                                                            options: Options) -> None:
    assert _rows(leads_over_time(source, NOVEMBER, options)) == [
        (date(2026, 11, 2), "Advertisement", 1, 1, 0, 0),
        (date(2026, 11, 2), "Web", 1, 1, 1, 0),
        (date(2026, 11, 9), "Advertisement", 0, 0, 0, 0),
        (date(2026, 11, 9), "Web", 1, 0, 0, 1),
        (date(2026, 11, 16), "Advertisement", 0, 0, 0, 0),
        (date(2026, 11, 16), "Web", 0, 0, 0, 0),
        (date(2026, 11, 23), "Advertisement", 1, 1, 0, 0),
        (date(2026, 11, 23), "Web", 0, 1, 1, 0),
    ]


def test_leads_over_time_by_month_without_a_split(source: ReportSource) -> None:
    period = Period(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
                    "month")
    result = leads_over_time(source, period, Options(now=NOW, split="none"))
    assert _rows(result) == [(date(2026, 10, 1), "all", 1, 0, 0, 0),
                             (date(2026, 11, 1), "all", 4, 4, 2, 1)]


def test_funnel_of_the_november_cohort(source: ReportSource, options: Options) -> None:
    assert _rows(funnel(source, NOVEMBER, options)) == [
        ("Inquiry", 4, 0, 1.0, None),
        ("Lead", 4, 1, 0.75, 24.0),        # P1 23 h, P2 24 h, P3 26 h
        ("MQL", 3, 1, 0.3333, 15.0),       # P1 6 h, P3 24 h
        ("SAL", 1, 0, 1.0, 144.0),         # P1, 4 Nov 15:00 to 10 Nov 15:00
        ("SQL", 1, 1, 0.0, None),
        ("Opportunity", 0, 0, None, None),
        ("Customer", 0, 0, None, None),
        ("Recycled", 0, 0, None, None),
        ("Nurture", 0, 0, None, None),
        ("Disqualified", 1, 1, None, None),
    ]


def test_sources_with_the_reasons_reps_gave(source: ReportSource, options: Options) -> None:
    assert _rows(sources(source, NOVEMBER, options)) == [
        ("Advertisement", 2, 2, 1.0, 0, 0.0, 0, 1, "Not a Fit: 1"),
        ("Web", 2, 1, 0.5, 1, 0.5, 0, 0, ""),
    ]


def test_campaigns_count_what_followed_the_first_response(source: ReportSource,
                                                          options: Options) -> None:
    # P2 answered 701A after its MQL: a response and a person, but no influenced MQL.
    assert _rows(campaigns(source, NOVEMBER, options)) == [
        ("Webinar Nov", 3, 2, 1, 1, 0),
        ("hs-55", 1, 1, 1, 0, 0),
    ]


def test_clean_your_room_lists_the_waiting_lead_and_a_rep_with_none(
        source: ReportSource, options: Options) -> None:
    result = clean_your_room(source, NOVEMBER, options)
    assert _rows(result, "reps") == [("Ava", 1, 1), ("Bo", 1, 0), ("Cy", 0, 0)]
    assert _rows(result, "waiting leads") == [
        ("Ava", 2, "MQL", at(6, 12), 24.0, "remind, escalate", None, 24.0,
         "salesforce Lead 00Q2")]


def test_clean_your_room_counts_a_quiet_sal_once_the_untouched_days_pass(
        source: ReportSource) -> None:
    # P4's last touch was 29 Nov 10:00: past one day of quiet by 30 Nov 12:00, not two.
    one_day = clean_your_room(source, NOVEMBER, Options(now=NOW, untouched_days=1))
    two_days = clean_your_room(source, NOVEMBER, Options(now=NOW, untouched_days=2))
    assert [r["person_id"] for r in one_day.table("waiting leads").rows] == [2, 4]
    assert [r["person_id"] for r in two_days.table("waiting leads").rows] == [2]
    # Once P4's qualify step is due it waits whatever its touches.
    later = clean_your_room(source, NOVEMBER,
                            Options(now=at(2, 12, month=12), untouched_days=30))
    assert [(r["person_id"], r["past_sla"]) for r in later.table("waiting leads").rows] == [
        (2, "remind, escalate"), (4, "qualify")]


def test_mql_to_sal_per_rep_and_pool(source: ReportSource, options: Options) -> None:
    result = mql_to_sal(source, NOVEMBER, options)
    assert _rows(result, "by rep") == [("Ava", 2, 1, 0.5, 6.0, 1, 1, 0),
                                       ("Bo", 2, 1, 0.5, 2.0, 0, 0, 0)]
    assert _rows(result, "by pool") == [("(no pool)", 1, 0, 0.0, None, 0, 0, 0),
                                        ("pool-east", 2, 1, 0.5, 6.0, 1, 1, 0),
                                        ("pool-west", 1, 1, 1.0, 2.0, 0, 0, 0)]


def test_a_period_holds_its_start_and_not_its_end(source: ReportSource,
                                                  options: Options) -> None:
    # P4's MQL (23 Nov 09:00) is the last one; a period ending then leaves it out.
    period = Period(at(23, 9) - timedelta(days=7), at(23, 9), "week")
    assert [r[0] for r in _rows(mql_to_sal(source, period, options))] == []
    period = Period(at(23, 9), at(23, 10), "day")
    assert [r[0] for r in _rows(mql_to_sal(source, period, options))] == ["Bo"]


def test_sync_health_cycles_calls_outbox_and_dead_letters(seeded: StateStore,
                                                         options: Options) -> None:
    add_runs(seeded)
    period = Period(at(29), at(1, month=12), "day")
    result = sync_health(ReportSource(seeded), period, options)
    assert _rows(result, "cycles") == [
        (date(2026, 11, 29), 2, 1, 0, 1, 0, 0, 20.0, 30.0),
        (date(2026, 11, 30), 1, 1, 0, 0, 0, 0, 60.0, 60.0)]
    assert _rows(result, "api calls per day") == [
        (date(2026, 11, 29), "hubspot", 5, None, None),
        (date(2026, 11, 29), "salesforce", 15, 100, 0.15),
        (date(2026, 11, 30), "salesforce", 4, 100, 0.04)]
    assert _rows(result, "outbox") == [("dead", 3), ("pending", 1)]
    assert _rows(result, "dead letters") == [("INVALID_EMAIL", 1), ("REQUIRED_FIELD", 2)]
    assert _rows(result, "data quality") == [("ambiguous_match", 1)]


@pytest.mark.parametrize("by", ["day", "week", "month"])
def test_buckets_cover_the_period_without_gaps(by: str) -> None:
    period = Period(datetime(2026, 12, 30, 5, tzinfo=UTC), datetime(2027, 3, 2, tzinfo=UTC),
                    by)  # type: ignore[arg-type]
    buckets = period.buckets()
    assert buckets[0] <= date(2026, 12, 30) and buckets[-1] <= date(2027, 3, 1)
    assert buckets == sorted(set(buckets))
    moments = (period.since + timedelta(hours=h) for h in range(0, 1500, 7))
    assert {period.bucket_of(t) for t in moments if period.holds(t)} == set(buckets)


def test_every_report_over_the_week_with_no_leads(seeded: StateStore) -> None:
    """16-22 Nov: nobody was created, reached a stage, responded or ran a cycle. Each report
    says so with zeros or no rows, never an error; clean your room is a view of now, so it
    still lists the waiting lead, and Cy with no open lead."""
    add_runs(seeded)
    quiet = Period(at(16), at(23), "week")
    rules = load_rules(MAPPINGS)
    results = {name: r.run(ReportSource(seeded, rules), quiet, Options(now=NOW))
               for name, r in REPORTS.items() if name != "rules-impact"}
    assert _rows(results["leads-over-time"]) == [(date(2026, 11, 16), "all", 0, 0, 0, 0)]
    assert {(r[1], r[2], r[3], r[4]) for r in _rows(results["funnel"])} == {
        (0, 0, None, None)}
    for name in ("sources", "campaigns", "mql-to-sal"):
        assert all(not t.rows for t in results[name].tables), name
    assert _rows(results["clean-your-room"], "reps") == [("Ava", 1, 1), ("Bo", 1, 0),
                                                        ("Cy", 0, 0)]
    health = results["sync-health"]
    assert _rows(health, "cycles") == [(date(2026, 11, 16), 0, 0, 0, 0, 0, 0, None, None)]
    assert _rows(health, "api calls per day") == []
    assert _rows(health, "change to visible") == []
    assert _rows(health, "dead letters") == [("INVALID_EMAIL", 1), ("REQUIRED_FIELD", 2)]


def test_leads_over_time_by_segment_reads_no_lead_source(seeded: StateStore) -> None:
    # Without the mapping files there is no lead-source field; the segment split needs none.
    result = leads_over_time(ReportSource(seeded), NOVEMBER, Options(now=NOW, split="segment"))
    assert [(r[0], r[2], r[3]) for r in _rows(result) if r[1] == "Hot"] == [
        (date(2026, 11, 2), 2, 2), (date(2026, 11, 9), 1, 0), (date(2026, 11, 16), 0, 0),
        (date(2026, 11, 23), 1, 2)]
