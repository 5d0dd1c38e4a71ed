"""HubSpot connector against the sandbox, through hubspot-api-client over HTTPS."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from connectors.base import ACTIVITY_KINDS, ActivityRecord, Cursor, Page, RemoteRecord, WriteItem
from connectors.hubspot.connector import HubSpotConnector
from syncagent.errors import BudgetExhausted, FatalError, QuotaExhausted
from syncagent.sandbox.server import RunningSandbox
from tests.connectors.conftest import fast_retry, hs_connector

FAST = {"hubspot_searches_per_second": 100, "hubspot_requests_per_10s": 1000}


def _read(conn: HubSpotConnector, stream: str, cursor: Cursor | None,
          sandbox: RunningSandbox) -> tuple[list[Page], Cursor | None]:
    pages = list(conn.read(stream, cursor, cycle_start=sandbox.ctx.clock.now()))
    return pages, (pages[-1].cursor if pages else cursor)


def _searches(conn: HubSpotConnector) -> int:
    return sum(n for op, n in conn.calls.by_operation().items() if op.startswith("search_"))


def _live_contacts(sandbox: RunningSandbox) -> set[str]:
    return {str(rid) for rid, r in sandbox.ctx.hs.store("contacts").records.items()
            if not r.archived}


def test_contacts_backfill_reads_each_once_in_ceil_rows_over_200_searches(
        sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=2500, faults=FAST)
    conn = hs_connector(sandbox, searches_per_second=50)
    pages, _ = _read(conn, "contacts", None, sandbox)
    ids = [r.id for p in pages for r in p.records
           if isinstance(r, RemoteRecord) and not r.deleted]
    assert len(ids) == len(set(ids))
    assert set(ids) == _live_contacts(sandbox)
    assert _searches(conn) <= 1.05 * math.ceil(len(ids) / 200) + conn.keyset_restarts


def test_incremental_read_with_nothing_changed_costs_one_call_per_stream(sandbox: Any) -> None:
    conn = hs_connector(sandbox)
    cursors = {}
    for name in conn.streams:
        _, cursors[name] = _read(conn, name, None, sandbox)
    conn.calls.reset()
    changed = []
    for name in conn.streams:
        pages, _ = _read(conn, name, cursors[name], sandbox)
        changed += [r for p in pages for r in p.records]
    assert changed == []
    assert conn.calls.total == len(conn.streams)


def test_10500_contacts_sharing_one_timestamp_are_all_read_once(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=20, faults=FAST)
    hs = sandbox.ctx.hs
    same = sandbox.ctx.clock.now() - timedelta(minutes=5)
    with sandbox.ctx.lock:
        for n in range(10_500):
            hs.create("contacts", {"email": f"bulk{n}@example.com", "firstname": "Bulk"},
                      created_at=same, system=True)
    conn = hs_connector(sandbox, searches_per_second=50)
    pages, cursor = _read(conn, "contacts", None, sandbox)
    ids = [r.id for p in pages for r in p.records
           if isinstance(r, RemoteRecord) and not r.deleted]
    assert len(ids) == len(set(ids)) == len(_live_contacts(sandbox))
    assert {len(i) for i in ids} >= {1, 2, 3, 4, 5}          # ids of different lengths
    assert conn.keyset_restarts >= 1
    assert _searches(conn) <= 1.05 * math.ceil(len(ids) / 200) + conn.keyset_restarts
    again, _ = _read(conn, "contacts", cursor, sandbox)
    assert [r for p in again for r in p.records] == []


def test_a_stop_mid_sweep_resumes_without_rereading_or_skipping(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=1500, faults=FAST)
    conn = hs_connector(sandbox, searches_per_second=50)
    start = sandbox.ctx.clock.now()
    first: list[str] = []
    committed: Cursor | None = None
    for n, page in enumerate(conn.read("contacts", None, cycle_start=start)):
        first += [r.id for r in page.records if isinstance(r, RemoteRecord)]
        committed = page.cursor
        if n == 2:
            break                                  # e.g. budget exhausted after 3 pages
    assert committed is not None and committed.sweep is not None
    # meanwhile a contact already swept is edited, and the next run starts much later
    edited = first[0]
    with sandbox.ctx.lock:
        sandbox.ctx.hs.update("contacts", int(edited), {"jobtitle": "CTO"})
    sandbox.ctx.clock.advance(600)
    later = sandbox.ctx.clock.now()
    pages = list(conn.read("contacts", committed, cycle_start=later))
    rest = [r.id for p in pages for r in p.records if isinstance(r, RemoteRecord)]
    assert not set(first) & set(rest)
    assert set(first) | set(rest) == _live_contacts(sandbox)
    # the edit fell after the stopped sweep's bound: the next read picks it up
    after = [r for p in conn.read("contacts", pages[-1].cursor, cycle_start=later)
             for r in p.records]
    assert [(r.id, r.fields.get("jobtitle")) for r in after
            if isinstance(r, RemoteRecord)] == [(edited, "CTO")]


def test_archived_and_merged_contacts_are_reported_as_delete_and_merge(
        sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=200)
    conn = hs_connector(sandbox)
    cursors = {name: _read(conn, name, None, sandbox)[1]
               for name in ("contacts", "contacts_archived")}
    live = sorted(int(i) for i in _live_contacts(sandbox))
    with sandbox.ctx.lock:
        sandbox.ctx.hs.archive("contacts", live[0])
        sandbox.ctx.hs.merge(live[1], live[2])
    sandbox.ctx.clock.advance(5)       # past the search index's lag
    archived, _ = _read(conn, "contacts_archived", cursors["contacts_archived"], sandbox)
    assert [(r.id, r.deleted) for p in archived for r in p.records] == [(str(live[0]), True)]
    pages, _ = _read(conn, "contacts", cursors["contacts"], sandbox)
    merges = [r for p in pages for r in p.records
              if isinstance(r, RemoteRecord) and r.merged_into]
    assert [(r.id, r.deleted, r.merged_into) for r in merges] == [
        (str(live[2]), True, str(live[1]))]


def test_engagements_and_web_events_become_activities_of_contacts(sandbox: Any) -> None:
    """Web events come from the events API; marketing e-mail opens and clicks (which that API
    does not carry) from the contacts' last open/click dates, read by the contacts stream."""
    conn = hs_connector(sandbox)
    kinds: dict[str, Counter[str]] = {}
    for name in ("calls", "meetings", "tasks", "web_events", "contacts"):
        pages, _ = _read(conn, name, None, sandbox)
        kinds[name] = Counter()
        for record in (r for p in pages for r in p.records):
            if name == "contacts" and isinstance(record, RemoteRecord):
                continue
            assert isinstance(record, ActivityRecord)
            assert record.kind in ACTIVITY_KINDS
            assert record.person_ref is not None and record.person_ref[1] == "contacts"
            kinds[name][record.kind] += 1
    assert kinds["web_events"]["page_view"] and kinds["web_events"]["form_submission"]
    assert not kinds["web_events"]["email_open"] and not kinds["web_events"]["email_click"]
    assert set(kinds["contacts"]) == {"email_open", "email_click"}
    assert kinds["calls"]["call_connected"] + kinds["calls"]["call_attempted"] > 0


def test_without_the_events_api_web_events_fall_back_to_contact_analytics(
        sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = hs_connector(sandbox)

    def unavailable(**_: Any) -> dict[str, Any]:
        raise FatalError("hubspot events: HTTP 403", status=403, system="hubspot")

    monkeypatch.setattr(conn.client, "events_page", unavailable)
    pages, cursor = _read(conn, "web_events", None, sandbox)
    activities = [r for p in pages for r in p.records if isinstance(r, ActivityRecord)]
    assert conn.events_available is False
    assert {a.kind for a in activities} >= {"page_view", "form_submission"}
    again, _ = _read(conn, "web_events", cursor, sandbox)
    assert [r for p in again for r in p.records] == []


def test_updates_go_100_per_call_and_207_errors_map_by_context_ids(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=1500, faults={**FAST, "seed": 4, "hubspot": {
        "rate_500": 0.10, "rate_429": 0.05, "rate_hang": 0.02, "hang_seconds": 2,
        "rate_reject": 0.03}})
    conn = hs_connector(sandbox, retry=fast_retry(attempts=10), timeout_seconds=1.0)
    ids = sorted(_live_contacts(sandbox), key=int)[:1000]
    pending = [WriteItem(fields={"lead_grade": "A"}, id=i) for i in ids]
    final: dict[str, Any] = {}
    for _ in range(5):
        results = conn.write("contacts", "update", pending)
        pending = [WriteItem(fields={"lead_grade": "A"}, id=r.ref.id) for r in results
                   if r.status == "retryable"]
        final.update({r.ref.id or "": r for r in results if r.status != "retryable"})
        if not pending:
            break
    assert not pending and len(final) == len(ids)
    statuses = Counter(r.status for r in final.values())
    assert statuses["rejected"] > 0 and statuses["ok"] > 0
    store = sandbox.ctx.hs.store("contacts").records
    for rid, result in final.items():
        if result.status == "ok":
            assert store[int(rid)].properties.get("lead_grade") == "A"
        else:
            assert store[int(rid)].properties.get("lead_grade") != "A"
            assert result.code and result.message


def test_upsert_by_email_and_create_map_results_to_their_items(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=50)
    conn = hs_connector(sandbox)
    existing = next(r for r in sandbox.ctx.hs.store("contacts").records.values()
                    if r.properties.get("email"))
    results = conn.write("contacts", "upsert", [
        WriteItem(fields={"lead_grade": "B"}, key=existing.properties["email"]),
        WriteItem(fields={"firstname": "New"}, key="brand.new@example.com")])
    assert [r.status for r in results] == ["ok", "ok"]
    assert results[0].id == str(existing.id)
    created = conn.write("contacts", "create", [
        WriteItem(fields={"email": "c1@example.com"}, key="trace-1"),
        WriteItem(fields={"email": "c2@example.com", "lifecyclestage": "nonsense"},
                  key="trace-2")])
    assert created[0].ok and created[0].id
    assert created[1].status == "rejected" and "lifecyclestage" in (created[1].message or "")
    # the same create again (its first answer lost): HubSpot says CONFLICT, naming the record
    [again] = conn.write("contacts", "create", [WriteItem(fields={"email": "c1@example.com"},
                                                          key="trace-1")])
    assert again.ok and again.id == created[0].id


def test_list_membership_add_and_remove(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=50)
    conn = hs_connector(sandbox)
    with sandbox.ctx.lock:
        hs_list = sandbox.ctx.hs.create_list("MQLs")
    ids = sorted(_live_contacts(sandbox), key=int)[:3]
    conn.change_list("mqls", add=ids)            # by name, as nurture.yaml names lists
    conn.change_list("MQLs", remove=ids[:1])
    assert sorted(str(m) for m in hs_list.members) == sorted(ids[1:])
    assert conn.calls.by_operation()["list_membership"] == 2
    assert conn.calls.by_operation()["list_lookup"] == 1   # the id is looked up once


def test_daily_limit_stops_with_quota_exhausted_and_is_not_retried(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=50, faults={"hubspot_daily_limit": 3})
    conn = hs_connector(sandbox, daily_budget_share=1.0)
    with pytest.raises(QuotaExhausted) as info:
        for name in conn.streams:
            list(conn.read(name, None))
    assert "daily" in str(info.value).lower()
    assert conn.calls.total <= 4            # three admitted, at most one refused, no retries


def test_the_agents_daily_share_stops_it_before_the_portal_limit(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=50, faults={"hubspot_daily_limit": 10})
    conn = hs_connector(sandbox, daily_budget_share=0.5)
    with pytest.raises(BudgetExhausted):
        for name in conn.streams:
            list(conn.read(name, None))
    assert conn.calls.total <= 5
    assert not [c for c in sandbox.stats()["calls"] if c["status"] == 429]


def test_client_side_limiter_keeps_searches_under_the_portal_limit(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=20, faults={"hubspot_searches_per_second": 5})
    conn = hs_connector(sandbox)            # the default setting: 4 searches a second
    for _ in range(12):
        list(conn.read("emails", None))
    refused = [c for c in sandbox.stats()["calls"] if c["status"] == 429]
    assert refused == []
    assert conn.client.search_limiter.waited > 0


def test_search_under_faults_emits_every_contact_exactly_once(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=2500, faults={**FAST, "seed": 6, "hubspot": {
        "rate_500": 0.10, "rate_429": 0.05, "rate_hang": 0.02, "hang_seconds": 2,
        "rate_reset": 0.02}})
    conn = hs_connector(sandbox, retry=fast_retry(attempts=12), timeout_seconds=1.0,
                        searches_per_second=50)
    pages, _ = _read(conn, "contacts", None, sandbox)
    ids = [r.id for p in pages for r in p.records
           if isinstance(r, RemoteRecord) and not r.deleted]
    assert len(ids) == len(set(ids))
    assert set(ids) == _live_contacts(sandbox)
    assert sum(f["count"] for f in sandbox.stats()["faults_injected"]) > 0
