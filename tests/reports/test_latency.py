"""Change-to-visible latency: what the plan says a write carries, what a done write records,
and the percentiles sync health shows per system and day (SQLite and Postgres).

Worst inputs first: a write that carries no change, a rejected write, a write settled twice,
a remote clock ahead of ours, a re-evaluation for time's sake and a person's first one.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from state.store import MirrorRow, NewOutboxRow, OutboxResult, StateStore
from syncagent.pipeline.plan import PersonPlan, carried_change
from syncagent.reports import Options, Period, ReportSource
from syncagent.reports.health import sync_health
from tests.reports.conftest import NOW, at


def _write(store: StateStore, key: str, system: str, changed: datetime | None,
           done: datetime, outcome: str = "ok") -> None:
    """One write planned just before ``done``, then claimed and settled ``outcome``."""
    store.outbox.enqueue([NewOutboxRow(system, "Lead", "update", {"Rating": key}, key,
                                       remote_id=key, changed_at=changed)],
                         now=done - timedelta(seconds=1))
    [item] = store.outbox.claim("test", 10, now=done)
    store.outbox.complete([OutboxResult(item.id, outcome, code=None if outcome == "ok"
                                        else "INVALID_EMAIL")], now=done)


def test_sync_health_shows_change_to_visible_percentiles_per_system_and_day(
        seeded: StateStore) -> None:
    done = at(29, 10)
    for n, seconds in enumerate((40, 10, 30, 20)):
        _write(seeded, f"sf{n}", "salesforce", done - timedelta(seconds=seconds), done)
    _write(seeded, "hs0", "hubspot", done - timedelta(seconds=5), done)
    _write(seeded, "ahead", "hubspot", done + timedelta(seconds=30), done)  # remote clock
    _write(seeded, "none", "salesforce", None, done)        # carries no remote change
    _write(seeded, "bad", "salesforce", done - timedelta(seconds=999), done, "rejected")
    _write(seeded, "next", "salesforce", at(30, 9) - timedelta(seconds=100), at(30, 9))
    _write(seeded, "late", "salesforce", at(1, 9, month=12) - timedelta(hours=1),
           at(1, 9, month=12))                              # outside the period
    result = sync_health(ReportSource(seeded), Period(at(29), at(1, month=12), "day"),
                         Options(now=NOW))
    rows = [tuple(r.values()) for r in result.table("change to visible").rows]
    # nearest rank: p50 of 10, 20, 30, 40 is the 2nd (20), p95 the 4th (40); the write
    # "ahead" counts as 0 s
    assert rows == [(date(2026, 11, 29), "hubspot", 2, 0.0, 5.0),
                    (date(2026, 11, 29), "salesforce", 4, 20.0, 40.0),
                    (date(2026, 11, 30), "salesforce", 1, 100.0, 100.0)]


def test_a_write_settled_twice_counts_once(seeded: StateStore) -> None:
    store = seeded
    changed, done = at(29, 9), at(29, 10)
    store.outbox.enqueue([NewOutboxRow("salesforce", "Lead", "update", {"A": 1}, "k1",
                                       remote_id="00Q1", changed_at=changed)], now=changed)
    [item] = store.outbox.claim("test", 10, now=done)
    store.outbox.complete([OutboxResult(item.id, "ok")], now=done)
    store.outbox.complete([OutboxResult(item.id, "ok")], now=done + timedelta(minutes=5))
    figures = store.reports.latency(at(29), at(30))
    assert [(f.system, f.writes, f.p50_seconds) for f in figures] == [
        ("salesforce", 1, 3600.0)]


def test_a_rearmed_write_measures_from_its_newest_change(seeded: StateStore) -> None:
    store = seeded
    key = "salesforce:Lead:00Q1:update"
    store.outbox.enqueue([NewOutboxRow("salesforce", "Lead", "update", {"A": 1}, key,
                                       remote_id="00Q1", changed_at=at(29, 8))], now=at(29, 8))
    store.outbox.enqueue([NewOutboxRow("salesforce", "Lead", "update", {"A": 2}, key,
                                       remote_id="00Q1", changed_at=at(29, 9))], now=at(29, 9))
    [item] = store.outbox.claim("test", 10, now=at(29, 10))
    store.outbox.complete([OutboxResult(item.id, "ok")], now=at(29, 10))
    assert [f.p95_seconds for f in store.reports.latency(at(29), at(30))] == [3600.0]


def _plan(before: datetime | None, *records: MirrorRow) -> PersonPlan:
    return PersonPlan(1, None, {}, records, evaluated_before=before)  # type: ignore[arg-type]


def test_a_write_carries_the_newest_change_of_the_other_systems() -> None:
    lead = MirrorRow("salesforce", "Lead", "00Q1", {}, at(29, 9))
    contact = MirrorRow("hubspot", "contacts", "501", {}, at(29, 8))
    echo = MirrorRow("salesforce", "Lead", "00Q2", {}, at(29, 11))
    gone = MirrorRow("hubspot", "contacts", "502", {}, at(29, 12), deleted=True)
    person = _plan(at(29, 7), lead, contact, echo, gone)
    # to HubSpot: Salesforce's newest change; to Salesforce: HubSpot's live one
    assert carried_change(person, "hubspot") == at(29, 11)
    assert carried_change(person, "salesforce") == at(29, 8)


def test_a_person_only_one_system_holds_carries_its_own_change() -> None:
    lead = MirrorRow("salesforce", "Lead", "00Q1", {}, at(29, 9))
    assert carried_change(_plan(at(29, 7), lead), "salesforce") == at(29, 9)


def test_a_re_evaluation_for_times_sake_and_a_first_evaluation_carry_no_change() -> None:
    lead = MirrorRow("salesforce", "Lead", "00Q1", {}, at(29, 9))
    assert carried_change(_plan(at(29, 9), lead), "hubspot") is None      # nothing newer
    assert carried_change(_plan(None, lead), "hubspot") is None           # first evaluation
    no_stamp = MirrorRow("salesforce", "Lead", "00Q1", {}, None)
    assert carried_change(_plan(at(29, 7), no_stamp), "hubspot") is None
