"""The HubSpot connector survives a strict portal (issue 11): bad inputs isolated, missing
scopes switch off one feature, lists by name, lifecycle moved back the way HubSpot needs,
events below Enterprise, and a burst of simultaneous events read exactly once."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

import pytest

from connectors.base import ActivityRecord, Cursor, RemoteRecord, WriteItem
from connectors.hubspot import streams
from connectors.hubspot.connector import HubSpotConnector
from syncagent.errors import RecordRejected
from syncagent.sandbox.common import SandboxConfig
from syncagent.sandbox.hubspot.scopes import AGENT_SCOPES
from syncagent.sandbox.server import RunningSandbox
from tests.connectors.conftest import hs_connector

FAST = {"hubspot_searches_per_second": 100, "hubspot_requests_per_10s": 10_000,
        "hubspot_search_delay_seconds": 0}


def _live(sandbox: RunningSandbox, n: int) -> list[str]:
    records = sandbox.ctx.hs.store("contacts").records
    return [str(i) for i in sorted(i for i, r in records.items() if not r.archived)[:n]]


def _batch_calls(conn: HubSpotConnector) -> int:
    return sum(n for op, n in conn.calls.by_operation().items() if op.startswith("batch_"))


@pytest.mark.parametrize("named", [True, False])
def test_100_updates_with_one_invalid_email_write_99_and_dead_letter_one(
        sandbox_factory: Any, named: bool) -> None:
    """Whether HubSpot's refusal names the bad input (then: two calls) or not (bisection),
    the 99 good updates land and the bad one is rejected with INVALID_EMAIL, in at most
    1 + 2·⌈log₂ 100⌉ calls."""
    sandbox = sandbox_factory(leads=150, seed=41, faults=FAST)
    sandbox.ctx.hs.batch_errors_name_inputs = named
    conn = hs_connector(sandbox)
    ids = _live(sandbox, 100)
    bad = ids[random.Random(41).randrange(100)]
    items = [WriteItem(fields={"lead_grade": "B"} if i != bad else
                       {"lead_grade": "B", "email": "someone@acme-corp.cm0"}, id=i) for i in ids]
    results = conn.write("contacts", "update", items)
    assert [r.ref.id for r in results] == ids, "results come back in input order"
    rejected = [(r.ref.id, r.code) for r in results if not r.ok]
    assert rejected == [(bad, "INVALID_EMAIL")]
    assert "acme-corp.cm0" in (next(r for r in results if not r.ok).message or "")
    store = sandbox.ctx.hs.store("contacts").records
    assert sum(store[int(i)].properties.get("lead_grade") == "B" for i in ids) == 99
    assert store[int(bad)].properties.get("lead_grade") != "B"
    calls = _batch_calls(conn)
    assert calls == 2 if named else 2 < calls <= 1 + 2 * math.ceil(math.log2(100))


def test_several_bad_inputs_of_different_kinds_are_each_isolated(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=120, seed=43, faults=FAST)
    sandbox.ctx.hs.batch_errors_name_inputs = False
    conn = hs_connector(sandbox)
    ids = _live(sandbox, 60)
    bad = {ids[3]: ({"email": "x@y"}, "INVALID_EMAIL"),
           ids[31]: ({"lead_segment": "someday"}, "INVALID_OPTION"),
           ids[59]: ({"no_such_property": "1"}, "PROPERTY_DOESNT_EXIST")}
    items = [WriteItem(fields=bad[i][0] if i in bad else {"lead_score": "7"}, id=i) for i in ids]
    results = conn.write("contacts", "update", items)
    assert {r.ref.id: r.code for r in results if not r.ok} == {i: c for i, (_, c) in bad.items()}
    assert sum(r.ok for r in results) == 57


def test_a_refused_create_is_isolated_and_a_conflict_names_the_existing_record(
        sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=30, seed=47, faults=FAST)
    conn = hs_connector(sandbox)
    taken = sandbox.ctx.hs.get("contacts", int(_live(sandbox, 1)[0]))
    results = conn.write("contacts", "create", [
        WriteItem(fields={"email": "one@newco.com"}, key="t1"),
        WriteItem(fields={"email": taken.properties["email"]}, key="t2"),
        WriteItem(fields={"email": "three@newco.com"}, key="t3")])
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert results[1].id == str(taken.id), "the existing contact is the one to use"
    assert sandbox.ctx.hs.find_by("contacts", "email", "three@newco.com") is not None


def test_a_backwards_lifecycle_move_is_cleared_then_set(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=30, seed=53, faults=FAST)
    conn = hs_connector(sandbox)
    rid = _live(sandbox, 1)[0]
    conn.write("contacts", "update", [WriteItem(fields={"lifecyclestage": "other"}, id=rid)])
    [plain] = conn.write("contacts", "update", [WriteItem(fields={"lifecyclestage": "lead"},
                                                          id=rid)])
    assert plain.ok and sandbox.ctx.hs.get("contacts", int(rid)).properties[
        "lifecyclestage"] == "other", "HubSpot ignores a plain move backwards"
    [moved] = conn.write("contacts", "update", [WriteItem(
        fields={"lifecyclestage": "lead", "lead_grade": "C"}, id=rid,
        clear_first=("lifecyclestage",))])
    props = sandbox.ctx.hs.get("contacts", int(rid)).properties
    assert moved.ok and props["lifecyclestage"] == "lead" and props["lead_grade"] == "C"


def test_a_missing_owners_scope_switches_off_owners_only(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=80, seed=59, faults=FAST, config=SandboxConfig(
        hubspot_scopes=tuple(s for s in AGENT_SCOPES if s != "crm.objects.owners.read")))
    conn = hs_connector(sandbox)
    cursors: dict[str, Cursor | None] = {name: None for name in conn.streams}
    pages = list(conn.read_many(cursors, cycle_start=sandbox.ctx.clock.now()))
    read = {p.stream for p in pages}
    assert "owners" not in read
    assert {"contacts", "calls", "meetings", "tasks", "web_events"} <= read, \
        "the streams after owners still run"
    assert list(conn.features_off) == ["owners"]
    assert "crm.objects.owners.read" in conn.features_off["owners"]


def test_lists_are_written_by_name_and_unusable_ones_reject_only_their_rows(
        sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=40, seed=61, faults=FAST)
    conn = hs_connector(sandbox)
    ids = _live(sandbox, 3)
    conn.change_list("newsletter", add=ids)
    assert {str(m) for m in sandbox.ctx.hs.list_named("Newsletter").members} >= set(ids)
    with pytest.raises(RecordRejected) as missing:
        conn.change_list("No Such Track", add=ids)
    assert missing.value.code == "LIST_NOT_FOUND" and "No Such Track" in missing.value.message
    with pytest.raises(RecordRejected) as dynamic:
        conn.change_list("High intent (dynamic)", add=ids)
    assert dynamic.value.code == "LIST_NOT_MANUAL"


def test_a_missing_lists_scope_names_the_scope(sandbox_factory: Any) -> None:
    from connectors.hubspot.errors import MissingScopes

    sandbox = sandbox_factory(leads=20, seed=67, faults=FAST, config=SandboxConfig(
        hubspot_scopes=tuple(s for s in AGENT_SCOPES if s != "crm.lists.write")))
    conn = hs_connector(sandbox)
    with pytest.raises(MissingScopes) as caught:
        conn.change_list("Newsletter", add=_live(sandbox, 1))
    assert caught.value.scopes == ("crm.lists.write",)
    assert "crm.lists.write" in caught.value.message and caught.value.hint


@pytest.mark.parametrize("installed", [True, False])
def test_the_portals_contact_properties_say_whether_salesforce_ids_exist(
        sandbox_factory: Any, installed: bool) -> None:
    from syncagent.sandbox.hubspot.portal import HubSpotPortal

    sandbox = sandbox_factory(leads=10, faults=FAST)
    with sandbox.ctx.lock:
        sandbox.ctx.hs = HubSpotPortal(sandbox.ctx.clock, profile="fresh",
                                       salesforce_integration=installed)
    conn = hs_connector(sandbox)
    names = conn.contact_properties()
    assert names is not None and ("salesforceleadid" in names) is installed
    conn.contact_properties()
    assert conn.calls.by_operation()["properties"] == 1, "read once, then cached"


def test_without_the_schema_scope_the_properties_are_unknown(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=10, faults=FAST, config=SandboxConfig(
        hubspot_scopes=tuple(s for s in AGENT_SCOPES if s != "crm.schemas.contacts.read")))
    assert hs_connector(sandbox).contact_properties() is None


@pytest.mark.parametrize("tier", ["starter", "professional"])
def test_below_enterprise_web_events_fall_back_to_contact_analytics(sandbox_factory: Any,
                                                                    tier: str) -> None:
    sandbox = sandbox_factory(leads=60, seed=71, faults=FAST,
                              config=SandboxConfig(hubspot_tier=tier))  # type: ignore[arg-type]
    conn = hs_connector(sandbox)
    pages = list(conn.read("web_events", None, cycle_start=sandbox.ctx.clock.now()))
    kinds = {r.kind for p in pages for r in p.records if isinstance(r, ActivityRecord)}
    assert conn.events_available is False
    assert kinds and kinds <= {"page_view", "form_submission"}
    assert pages[-1].done


def test_a_burst_of_10000_events_in_one_second_is_read_exactly_once(
        sandbox_factory: Any) -> None:
    """The agent's events pull, stopped after three pages and resumed from the committed
    cursor, records every event of the burst once."""
    sandbox = sandbox_factory(leads=20, seed=73, faults=FAST)
    hs = sandbox.ctx.hs
    second = (sandbox.ctx.clock.now() - timedelta(minutes=1)).replace(microsecond=0)
    rng = random.Random(73)
    contacts = [int(i) for i in _live(sandbox, 5)]
    with sandbox.ctx.lock:
        burst = {hs.add_event("e_submitted_form" if n % 7 == 0 else "e_visited_page",
                              rng.choice(contacts),
                              second + timedelta(microseconds=rng.randrange(1_000_000)),
                              {"hs_url": "https://x.io/p"}).id for n in range(10_000)}
    conn = hs_connector(sandbox)
    start = sandbox.ctx.clock.now()
    seen: list[str] = []
    committed: Cursor | None = None
    for n, page in enumerate(conn.read("web_events", None, cycle_start=start)):
        seen += [r.id for r in page.records]
        committed = page.cursor
        if n == 2:
            break
    for page in conn.read("web_events", committed, cycle_start=sandbox.ctx.clock.now()):
        seen += [r.id for r in page.records]
    in_burst = [i for i in seen if i in burst]
    assert len(in_burst) == len(set(in_burst)) == 10_000
    assert len(seen) == len(set(seen)), "no event of the seed is recorded twice either"


def test_contacts_streams_read_every_mapped_hubspot_property() -> None:
    from syncagent.engine import load_rules
    from tests.e2e.conftest import MAPPINGS

    names = (f.remote_name("hubspot", "contacts") for f in load_rules(MAPPINGS).compiled.fields)
    mapped = [name for name in names if name]
    assert "hs_seniority" in mapped and "hs_seniority" not in streams.CONTACT_PROPERTIES
    table = streams.with_mapped_fields(streams.STREAMS, mapped)
    contacts = next(s for s in table if s.name == "contacts")
    assert set(mapped) <= set(contacts.fields)
    assert len(contacts.fields) == len(set(contacts.fields))


def test_contacts_carry_marketing_email_opens_and_clicks_as_activities() -> None:
    row = {"id": "9", "properties": {"hs_email_last_open_date": "2026-11-02T10:00:00.000Z",
                                     "hs_email_last_click_date": "2026-11-02T10:02:00.000Z"}}
    kinds = {a.kind: a.id for a in streams.email_activities(row)}
    assert kinds == {"email_open": "9:email_open:2026-11-02T10:00:00+00:00",
                     "email_click": "9:email_click:2026-11-02T10:02:00+00:00"}
    assert all(isinstance(a, ActivityRecord) and not isinstance(a, RemoteRecord)
               for a in streams.email_activities(row))


def test_emails_feed_bounces_and_notes_are_not_read(sandbox_factory: Any) -> None:
    """Every HubSpot activity stream yields a kind the scoring rules know: a BOUNCED sales
    e-mail is an email_bounce; notes (free text, no kind to derive) are not a stream."""
    sandbox = sandbox_factory(leads=30, seed=79, faults=FAST)
    contact = int(_live(sandbox, 1)[0])
    when = sandbox.ctx.clock.now() - timedelta(hours=2)
    with sandbox.ctx.lock:
        bounced = sandbox.ctx.hs.create("emails", {
            "hs_timestamp": when.isoformat(), "hs_email_status": "BOUNCED",
            "hs_email_subject": "Hello"}, associations={"contacts": {contact}},
            created_at=when, system=True)
    conn = hs_connector(sandbox)
    assert "notes" not in conn.streams
    pages = list(conn.read("emails", None, cycle_start=sandbox.ctx.clock.now()))
    got = [(r.id, r.kind, r.person_ref) for p in pages for r in p.records]
    assert (str(bounced.id), "email_bounce", ("hubspot", "contacts", str(contact))) in got
    assert {kind for _, kind, _ in got} == {"email_bounce"}


def test_preflight_names_the_agents_missing_properties_on_a_fresh_portal(
        sandbox_factory: Any) -> None:
    from syncagent.errors import FatalError

    fresh = hs_connector(sandbox_factory(leads=10, faults=FAST,
                                         config=SandboxConfig(profile="fresh")))
    with pytest.raises(FatalError) as caught:
        fresh.preflight()
    assert caught.value.message.startswith("hubspot: the portal is not set up")
    assert "lead_grade" in caught.value.message and "syncagent doctor" in (caught.value.hint or "")
    hs_connector(sandbox_factory(leads=10, faults=FAST)).preflight()    # configured: passes
