"""The HubSpot emulator, driven only through the unmodified hubspot-api-client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicMergeInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)

from syncagent.sandbox.common import FaultProfile
from syncagent.sandbox.server import RunningSandbox, start_sandbox
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.conftest import hubspot_client

RELAXED = {"hubspot_requests_per_10s": 100_000, "hubspot_searches_per_second": 100_000,
           "hubspot_search_delay_seconds": 0}   # the lag has its own test below


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    """This module's own read-only sandbox (300 leads), with rate limits out of the way:
    the limits have their own tests in test_hubspot_limits.py."""
    running = start_sandbox(leads=300, seed=7, faults=FaultProfile.model_validate(RELAXED))
    yield running
    running.stop()


@pytest.fixture
def sandbox_factory(sandbox_factory: SandboxFactory) -> SandboxFactory:
    def relaxed(leads: int = 20, seed: int = 7, faults: dict | None = None) -> RunningSandbox:
        return sandbox_factory(leads=leads, seed=seed, faults={**RELAXED, **(faults or {})})
    return relaxed


def _search(**kwargs: object) -> PublicObjectSearchRequest:
    return PublicObjectSearchRequest(**kwargs)


def test_search_pages_through_every_contact_in_numeric_id_order(sandbox: RunningSandbox) -> None:
    """Following paging.next.after visits each live contact once, ids ascending as numbers."""
    hs = hubspot_client(sandbox)
    seen: list[int] = []
    after: str | None = None
    total = None
    while True:
        page = hs.crm.contacts.search_api.do_search(public_object_search_request=_search(
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            properties=["email"], limit=100, after=after))
        total = page.total
        seen.extend(int(r.id) for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    live = [r.id for r in sandbox.ctx.hs.store("contacts").records.values() if not r.archived]
    assert total == len(live) == len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert len(str(seen[0])) < len(str(seen[-1]))   # ids of different lengths were compared


def test_search_filters_compare_ids_numerically_and_dates_as_epoch_ms(
        sandbox: RunningSandbox) -> None:
    """hs_object_id GT 9 excludes 10's lexicographic friends; date filters take epoch ms."""
    hs = hubspot_client(sandbox)
    page = hs.crm.contacts.search_api.do_search(public_object_search_request=_search(
        filter_groups=[{"filters": [{"propertyName": "hs_object_id", "operator": "BETWEEN",
                                     "value": "9", "highValue": "11"}]}], limit=10))
    assert sorted(int(r.id) for r in page.results) == [9, 10, 11]
    records = sandbox.ctx.hs.store("contacts").records.values()
    cutoff = sorted(r.updated_ms for r in records)[len(records) // 2]
    page = hs.crm.contacts.search_api.do_search(public_object_search_request=_search(
        filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                     "value": str(int(cutoff))}]}], limit=1))
    assert page.total == sum(1 for r in records if r.updated_ms >= int(cutoff)
                             and not r.archived)


@pytest.mark.parametrize(("flt", "check"), [
    ({"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@gmail.com"},
     lambda p: p["email"].endswith("@gmail.com")),
    ({"propertyName": "country", "operator": "IN", "values": ["germany", "France"]},
     lambda p: p["country"] in ("Germany", "France")),
    ({"propertyName": "salesforceleadid", "operator": "NOT_HAS_PROPERTY"},
     lambda p: not p.get("salesforceleadid")),
    ({"propertyName": "annualrevenue", "operator": "LT", "value": "5000000"},
     lambda p: float(p["annualrevenue"]) < 5_000_000),
    ({"propertyName": "numberofemployees", "operator": "IN", "values": ["1-5", "5-25"]},
     lambda p: p["numberofemployees"] in ("1-5", "5-25")),
    ({"propertyName": "lifecyclestage", "operator": "NEQ", "value": "lead"},
     lambda p: p.get("lifecyclestage") != "lead"),
])
def test_search_operators_select_only_matching_contacts(sandbox: RunningSandbox, flt: dict,
                                                       check: object) -> None:
    """Each operator returns exactly the records that satisfy it."""
    hs = hubspot_client(sandbox)
    props = ["email", "country", "salesforceleadid", "numberofemployees", "lifecyclestage",
             "annualrevenue"]
    page = hs.crm.contacts.search_api.do_search(public_object_search_request=_search(
        filter_groups=[{"filters": [flt]}], properties=props, limit=200))
    assert page.results, "the seed should have matches for every operator"
    assert all(check(r.properties) for r in page.results)  # type: ignore[operator]
    expected = sum(1 for r in sandbox.ctx.hs.store("contacts").records.values()
                   if not r.archived and check(  # type: ignore[operator]
                       {k: r.properties.get(k) for k in props}))
    assert page.total == expected


def test_search_past_ten_thousand_results_is_a_400(sandbox_factory: SandboxFactory) -> None:
    """paging.next is offered at 10,000, but asking for it answers 400 as HubSpot does."""
    running = sandbox_factory(leads=20)
    with running.ctx.lock:
        for n in range(10_050):
            running.ctx.hs.create("contacts", {"email": f"bulk{n}@example.org"}, system=True)
    hs = hubspot_client(running)
    page = hs.crm.contacts.search_api.do_search(public_object_search_request=_search(
        limit=200, after="9800"))
    assert page.total > 10_000 and len(page.results) == 200
    assert page.paging.next.after == "10000"
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.search_api.do_search(public_object_search_request=_search(
            limit=200, after=page.paging.next.after))
    assert caught.value.status == 400
    body = json.loads(caught.value.body)
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert "correlationId" in body


def test_search_limit_above_200_is_refused(sandbox: RunningSandbox) -> None:
    hs = hubspot_client(sandbox)
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.search_api.do_search(public_object_search_request=_search(limit=201))
    assert caught.value.status == 400


def test_batch_update_partial_failure_is_207_naming_records_by_context_ids(
        sandbox_factory: SandboxFactory) -> None:
    """An unknown id fails alone (207); the rest is written. (An invalid value fails the
    whole batch instead: tests/sandbox/test_hubspot_strict.py.)"""
    running = sandbox_factory(leads=20)
    hs = hubspot_client(running)
    result = hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        SimplePublicObjectBatchInput(id="1", properties={"lead_score": "42"}),
        SimplePublicObjectBatchInput(id="987654", properties={"lead_score": "1"}),
        SimplePublicObjectBatchInput(id="3", properties={"lead_grade": "B"}),
    ]))
    assert type(result).__name__ == "BatchResponseSimplePublicObjectWithErrors"
    assert sorted(r.id for r in result.results) == ["1", "3"]
    failed = {i: e.category for e in result.errors for i in e.context["ids"]}
    assert failed == {"987654": "OBJECT_NOT_FOUND"}
    assert running.ctx.hs.get("contacts", 1).properties["lead_score"] == "42"


def test_batch_over_100_inputs_is_refused_whole(sandbox: RunningSandbox) -> None:
    hs = hubspot_client(sandbox)
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
            inputs=[{"id": str(i)} for i in range(1, 102)], properties=["email"],
            properties_with_history=[]))
    assert caught.value.status == 400


def test_batch_create_and_upsert_by_email(sandbox_factory: SandboxFactory) -> None:
    """Create returns 201 results; upsert by email updates the existing and creates the new."""
    running = sandbox_factory(leads=20)
    hs = hubspot_client(running)
    created = hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[{"properties": {"email": "a@new-co.com", "lead_grade": "A"},
                 "associations": []}]))
    assert created.results[0].properties["lead_grade"] == "A"
    upserted = hs.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[{"idProperty": "email", "id": "a@new-co.com", "properties": {"lead_grade": "C"}},
                {"idProperty": "email", "id": "b@new-co.com",
                 "properties": {"lead_grade": "D"}}]))
    by_grade = {r.properties.get("lead_grade"): r for r in upserted.results}
    assert by_grade["C"].new is False and by_grade["C"].id == created.results[0].id
    assert by_grade["D"].new is True


def test_writes_reject_unknown_read_only_and_bad_enumeration_properties(
        sandbox: RunningSandbox) -> None:
    """Each invalid property is a 400 VALIDATION_ERROR naming the property."""
    hs = hubspot_client(sandbox)
    for props, code in (({"no_such_prop": "x"}, "PROPERTY_DOESNT_EXIST"),
                        ({"lastmodifieddate": "2024-01-01"}, "READ_ONLY_VALUE"),
                        ({"lifecyclestage": "hot"}, "INVALID_OPTION")):
        with pytest.raises(ApiException) as caught:
            hs.crm.contacts.basic_api.update("1", SimplePublicObjectInput(properties=props))
        body = json.loads(caught.value.body)
        assert caught.value.status == 400 and body["category"] == "VALIDATION_ERROR"
        assert code in body["message"] and next(iter(props)) in body["message"]


def test_seeded_portal_has_the_agent_properties(sandbox: RunningSandbox) -> None:
    hs = hubspot_client(sandbox)
    names = {p.name: p for p in hs.crm.properties.core_api.get_all("contacts").results}
    for name in ("lead_grade", "lead_score", "nurture_track", "lead_segment", "score_reasons",
                 "mql_date", "lifecyclestage", "hubspot_owner_id", "hs_lead_status",
                 "salesforceleadid", "salesforcecontactid"):
        assert name in names
    assert [o.value for o in names["lead_segment"].options] == [
        "sales-now", "nurture-then-sales", "other-offers", "leave"]
    assert names["lastmodifieddate"].modification_metadata.read_only_value is True


def test_property_create_then_duplicate_is_409(sandbox_factory: SandboxFactory) -> None:
    from hubspot.crm.properties import ApiException as PropertiesError
    from hubspot.crm.properties import PropertyCreate

    running = sandbox_factory(leads=20)
    hs = hubspot_client(running)
    spec = PropertyCreate(name="agent_tier", label="Agent tier", type="enumeration",
                          field_type="select", group_name="syncagent",
                          options=[{"label": "Gold", "value": "gold", "hidden": False}])
    assert hs.crm.properties.core_api.create("contacts", spec).name == "agent_tier"
    with pytest.raises(PropertiesError) as caught:
        hs.crm.properties.core_api.create("contacts", spec)
    assert caught.value.status == 409
    with pytest.raises(ApiException):
        hs.crm.contacts.basic_api.update("1", SimplePublicObjectInput(
            properties={"agent_tier": "silver"}))


def test_archived_contacts_disappear_from_reads_but_archived_true_finds_them(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=20)
    hs = hubspot_client(running)
    hs.crm.contacts.basic_api.archive("4")
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.basic_api.get_by_id("4")
    assert caught.value.status == 404
    archived = hs.crm.contacts.basic_api.get_by_id("4", archived=True)
    assert archived.archived is True and archived.archived_at is not None
    page = hs.crm.contacts.basic_api.get_page(limit=100, archived=True)
    assert [r.id for r in page.results] == ["4"]
    found = hs.crm.contacts.search_api.do_search(public_object_search_request=_search(
        filter_groups=[{"filters": [{"propertyName": "hs_object_id", "operator": "EQ",
                                     "value": "4"}]}]))
    assert found.total == 0


def test_merge_keeps_primary_and_old_id_resolves_to_it(sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=20)
    hs = hubspot_client(running)
    merged = hs.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id="5",
                                                              object_id_to_merge="6"))
    assert merged.id == "5" and merged.properties["hs_merged_object_ids"] == "6"
    assert hs.crm.contacts.basic_api.get_by_id("6").id == "5"


def test_create_with_existing_email_is_409_conflict(sandbox: RunningSandbox) -> None:
    hs = hubspot_client(sandbox)
    email = sandbox.ctx.hs.get("contacts", 1).properties["email"]
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
            properties={"email": email}))
    assert caught.value.status == 409 and "Existing ID: 1" in caught.value.body


def test_owners_page_with_after_cursor(sandbox: RunningSandbox) -> None:
    hs = hubspot_client(sandbox)
    first = hs.crm.owners.owners_api.get_page(limit=2)
    second = hs.crm.owners.owners_api.get_page(limit=2, after=first.paging.next.after)
    ids = [o.id for o in first.results + second.results]
    assert len(set(ids)) == 4 and all(o.email for o in first.results)


def test_list_memberships_add_and_remove(sandbox_factory: SandboxFactory) -> None:
    from hubspot.crm.lists import ApiException as ListsError
    from hubspot.crm.lists import ListCreateRequest

    running = sandbox_factory(leads=20)
    hs = hubspot_client(running)
    created = hs.crm.lists.lists_api.create(ListCreateRequest(
        name="MQLs from agent", object_type_id="0-1", processing_type="MANUAL"))
    list_id = created.list.list_id
    added = hs.crm.lists.memberships_api.add(list_id, ["1", "2", "999999"])
    assert sorted(added.records_ids_added) == ["1", "2"]
    assert added.record_ids_missing == ["999999"]
    removed = hs.crm.lists.memberships_api.remove(list_id, ["1"])
    assert removed.record_ids_removed == ["1"]
    page = hs.crm.lists.memberships_api.get_page(list_id)
    assert [m.record_id for m in page.results] == ["2"]
    dynamic = next(lst for lst in running.ctx.hs.lists.values()
                   if lst.processing_type == "DYNAMIC")
    with pytest.raises(ListsError) as caught:
        hs.crm.lists.memberships_api.add(str(dynamic.list_id), ["1"])
    assert caught.value.status == 400


def test_engagements_search_by_associated_contact(sandbox: RunningSandbox) -> None:
    """Calls are CRM objects with contact associations; hs_lastmodifieddate is their date."""
    from hubspot.crm.objects.calls import PublicObjectSearchRequest as CallSearch

    store = sandbox.ctx.hs.store("calls")
    call = next(iter(store.records.values()))
    contact_id = next(iter(call.associations["contacts"]))
    hs = hubspot_client(sandbox)
    found = hs.crm.objects.calls.search_api.do_search(public_object_search_request=CallSearch(
        filter_groups=[{"filters": [{"propertyName": "associations.contact", "operator": "EQ",
                                     "value": str(contact_id)}]}],
        sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
        properties=["hs_call_disposition", "hs_timestamp"]))
    assert str(call.id) in [r.id for r in found.results]
    one = hs.crm.objects.calls.basic_api.get_by_id(str(call.id), associations=["contacts"])
    assert one.associations["contacts"].results[0].id == str(contact_id)


def test_web_events_page_by_contact_and_type(sandbox: RunningSandbox) -> None:
    """GET /events/v3/events pages with an opaque after cursor and filters by contact/type."""
    hs = hubspot_client(sandbox)
    events = sandbox.ctx.hs.sorted_events()
    target = next(e for e in events if e.event_type == "e_visited_page")
    mine = [e for e in events if e.object_id == target.object_id
            and e.event_type == "e_visited_page"]
    got: list[str] = []
    after = None
    while True:
        page = hs.events.events_api.get_page(object_type="contact",
                                             object_id=target.object_id,
                                             event_type="e_visited_page", limit=2, after=after)
        got.extend(e.id for e in page.results)
        assert all(e.properties["hs_url"].startswith("https://") for e in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert got == [e.id for e in mine]


def test_search_index_lag_hides_fresh_changes_until_the_delay_passes(
        sandbox_factory: SandboxFactory) -> None:
    """With hubspot_search_delay_seconds, a new contact is readable at once but searchable
    only later: an incremental search without a lookback would miss it."""
    running = sandbox_factory(leads=20, faults={"hubspot_search_delay_seconds": 30})
    hs = hubspot_client(running)
    created = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "fresh@lag-co.com"}))
    by_email = _search(filter_groups=[{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "fresh@lag-co.com"}]}])
    assert hs.crm.contacts.basic_api.get_by_id(created.id).id == created.id
    assert hs.crm.contacts.search_api.do_search(public_object_search_request=by_email).total == 0
    running.ctx.clock.advance(31)
    assert hs.crm.contacts.search_api.do_search(public_object_search_request=by_email).total == 1


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/crm/v3/objects/contacts", "not json"),
    ("POST", "/crm/v3/objects/contacts", "[1, 2]"),
    ("POST", "/crm/v3/objects/contacts/batch/update", '{"inputs": [{"id": "1", "properties": 3}]}'),
    ("GET", "/crm/v3/owners/?limit=abc", None),
    ("GET", "/events/v3/events/?limit=x", None),
])
def test_malformed_requests_get_hubspot_400_bodies(sandbox: RunningSandbox, method: str,
                                                   path: str, body: str | None) -> None:
    import requests

    answer = requests.request(method, sandbox.url + path, data=body, verify=sandbox.ca_cert,
                              headers={"Authorization": "Bearer "
                                       + sandbox.info["hubspot"]["access_token"],
                                       "Content-Type": "application/json"}, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["status"] == "error" and answer.json()["category"] == "VALIDATION_ERROR"


def test_v4_associations_list_a_contacts_engagements(sandbox: RunningSandbox) -> None:
    from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest

    call = next(iter(sandbox.ctx.hs.store("calls").records.values()))
    contact_id = next(iter(call.associations["contacts"]))
    hs = hubspot_client(sandbox)
    page = hs.crm.associations.v4.basic_api.get_page("contacts", str(contact_id), "calls")
    assert str(call.id) in [r.to_object_id for r in page.results]
    assert page.results[0].association_types[0].type_id == 193
    batch = hs.crm.associations.v4.batch_api.get_page(
        "calls", "contacts", BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[{"id": str(call.id)}]))
    assert batch.results[0].to[0].to_object_id == str(contact_id)
