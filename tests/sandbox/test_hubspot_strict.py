"""The HubSpot emulator is as strict as a real portal (issue 11), driven only through the
unmodified hubspot-api-client. Each test pins one strict behaviour; the source each is
modelled on is cited where the sandbox implements it."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.lists import ListCreateRequest
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from syncagent.sandbox.common import SandboxConfig
from syncagent.sandbox.hubspot.scopes import AGENT_SCOPES
from syncagent.sandbox.server import RunningSandbox
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.conftest import hubspot_client

RELAXED = {"hubspot_requests_per_10s": 100_000, "hubspot_searches_per_second": 100_000}


@pytest.fixture(scope="module")
def box() -> Iterator[RunningSandbox]:
    """A private sandbox for this module; tests that change it restore what they change."""
    from syncagent.sandbox.common import FaultProfile
    from syncagent.sandbox.server import start_sandbox

    running = start_sandbox(leads=60, seed=23, faults=FaultProfile.model_validate(RELAXED))
    yield running
    running.stop()


def _body(caught: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    return dict(json.loads(caught.value.body))


def _refusal(call: Any, *args: Any) -> tuple[int, dict[str, Any]]:
    """Status and body of a call that must fail (every SDK sub-package has its own
    ApiException class, so failures are told apart by status, as the connector does)."""
    with pytest.raises(Exception) as caught:
        call(*args)
    return int(caught.value.status), dict(json.loads(caught.value.body))  # type: ignore[attr-defined]


def _contacts(box: RunningSandbox, n: int) -> list[int]:
    return sorted(rid for rid, r in box.ctx.hs.store("contacts").records.items()
                  if not r.archived)[:n]


# --- batch writes: one bad input fails the whole batch --------------------------------------

BAD_INPUTS = {
    "email without a real TLD": ({"email": "ann@northwind.con"}, "INVALID_EMAIL"),
    "email without a domain": ({"email": "ann@"}, "INVALID_EMAIL"),
    "reserved TLD": ({"email": "ann@corp.example"}, "INVALID_EMAIL"),
    "option not allowed": ({"lead_segment": "maybe-later"}, "INVALID_OPTION"),
    "property that does not exist": ({"favourite_colour": "teal"}, "PROPERTY_DOESNT_EXIST"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_batch_update_with_one_bad_input_fails_whole_and_names_it(box: RunningSandbox,
                                                                   case: str) -> None:
    properties, code = BAD_INPUTS[case]
    ids = _contacts(box, 5)
    before = {i: dict(box.ctx.hs.get("contacts", i).properties) for i in ids}
    inputs = [SimplePublicObjectBatchInput(id=str(i), properties={"lead_grade": "Z"})
              for i in ids]
    inputs[3] = SimplePublicObjectBatchInput(id=str(ids[3]), properties=properties)
    with pytest.raises(ApiException) as caught:
        hubspot_client(box).crm.contacts.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(inputs=inputs))
    body = _body(caught)
    assert caught.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid")
    assert [(e["code"], e["context"]["ids"]) for e in body["errors"]] == [(code, [str(ids[3])])]
    assert {i: box.ctx.hs.get("contacts", i).properties for i in ids} == before, \
        "nothing of a refused batch is written"


def test_batch_create_and_upsert_with_an_invalid_email_fail_whole(box: RunningSandbox) -> None:
    hs = hubspot_client(box)
    count = len(box.ctx.hs.store("contacts").records)
    with pytest.raises(ApiException) as created:
        hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
            SimplePublicObjectInputForCreate(properties={"email": "good.one@acme-corp.com"}),
            SimplePublicObjectInputForCreate(properties={"email": "bad.one@acme-corp.cmo"})]))
    assert created.value.status == 400
    assert "bad.one@acme-corp.cmo" in _body(created)["message"]
    with pytest.raises(ApiException) as upserted:
        hs.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
            SimplePublicObjectBatchInputUpsert(id="fine@acme-corp.com", id_property="email",
                                               properties={"lead_grade": "A"}),
            SimplePublicObjectBatchInputUpsert(id="broken@acme-corp", id_property="email",
                                               properties={"lead_grade": "A"})]))
    assert upserted.value.status == 400
    assert _body(upserted)["errors"][0]["context"]["ids"] == ["broken@acme-corp"]
    assert len(box.ctx.hs.store("contacts").records) == count


def test_batch_create_meeting_an_existing_email_is_a_conflict_for_the_whole_batch(
        box: RunningSandbox) -> None:
    existing = box.ctx.hs.get("contacts", _contacts(box, 1)[0])
    count = len(box.ctx.hs.store("contacts").records)
    with pytest.raises(ApiException) as caught:
        hubspot_client(box).crm.contacts.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
                SimplePublicObjectInputForCreate(properties={"email": "new.person@acme.io"}),
                SimplePublicObjectInputForCreate(properties={
                    "email": existing.properties["email"].upper()})]))
    assert caught.value.status == 409
    assert _body(caught) | {"correlationId": None} == {
        "status": "error", "category": "CONFLICT", "correlationId": None,
        "message": f"Contact already exists. Existing ID: {existing.id}"}
    assert len(box.ctx.hs.store("contacts").records) == count


def test_emails_with_real_tlds_are_accepted(box: RunningSandbox) -> None:
    rid = _contacts(box, 1)[0]
    old = box.ctx.hs.get("contacts", rid).properties["email"]
    try:
        for email in ("jo@firm.co.uk", "jo+tag@firm.io", "jo@firm.agency", "jo@firm.de"):
            hubspot_client(box).crm.contacts.basic_api.update(
                str(rid), SimplePublicObjectInput(properties={"email": email}))
            assert box.ctx.hs.get("contacts", rid).properties["email"] == email
    finally:
        with box.ctx.lock:
            box.ctx.hs.update("contacts", rid, {"email": old}, system=True)


# --- scopes ------------------------------------------

def _call(hs: Any, feature: str) -> Any:
    if feature == "owners":
        return hs.crm.owners.owners_api.get_page()
    if feature == "lists":
        return hs.crm.lists.lists_api.get_by_name("Newsletter", "0-1")
    if feature == "memberships":
        return hs.crm.lists.memberships_api.add("1", ["1"])
    if feature == "contacts":
        return hs.crm.contacts.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=1))
    return hs.crm.properties.core_api.get_all("contacts")


@pytest.mark.parametrize(("feature", "scope"), [
    ("owners", "crm.objects.owners.read"), ("lists", "crm.lists.read"),
    ("memberships", "crm.lists.write"), ("contacts", "crm.objects.contacts.read"),
    ("properties", "crm.schemas.contacts.read")])
def test_a_missing_scope_is_a_403_naming_the_scope(sandbox_factory: SandboxFactory,
                                                   feature: str, scope: str) -> None:
    running = sandbox_factory(leads=10, faults=RELAXED, config=SandboxConfig(
        hubspot_scopes=tuple(s for s in AGENT_SCOPES if s != scope)))
    with pytest.raises(Exception) as caught:      # the SDK raises ForbiddenException
        _call(hubspot_client(running), feature)
    assert getattr(caught.value, "status", None) == 403
    body = _body(caught)  # type: ignore[arg-type]
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == [scope]
    with running.ctx.lock:
        running.ctx.hs.scopes = frozenset(AGENT_SCOPES)
    try:
        _call(hubspot_client(running), feature)
    except Exception as error:                  # e.g. 404 for a list id nobody has
        assert getattr(error, "status", None) != 403


# --- lists ------------------------------------------

def test_lists_get_portal_ids_are_found_by_name_and_dynamic_ones_refuse_members(
        box: RunningSandbox) -> None:
    hs = hubspot_client(box)
    made = hs.crm.lists.lists_api.create(ListCreateRequest(
        name="Strict test list", object_type_id="0-1", processing_type="MANUAL")).list
    assert int(made.list_id) not in range(101, 106), "ids are the portal's, not the mapping's"
    found = hs.crm.lists.lists_api.get_by_name("strict TEST list", "0-1").list
    assert found.list_id == made.list_id
    ids = [str(i) for i in _contacts(box, 2)]
    added = hs.crm.lists.memberships_api.add(made.list_id, ids)
    assert sorted(added.records_ids_added) == sorted(ids)
    dynamic = box.ctx.hs.list_named("High intent (dynamic)")
    before = dict(dynamic.members)
    status, body = _refusal(hs.crm.lists.memberships_api.add, str(dynamic.list_id), ids)
    assert status == 400 and "DYNAMIC" in body["message"]
    assert dynamic.members == before


def test_the_configured_portal_holds_one_manual_list_per_shipped_track(
        box: RunningSandbox) -> None:
    from syncagent.engine import load_rules
    from tests.e2e.conftest import MAPPINGS

    hs = hubspot_client(box)
    for track in load_rules(MAPPINGS).nurture.tracks:
        found = hs.crm.lists.lists_api.get_by_name(track.hubspot_list, "0-1").list
        assert found.processing_type == "MANUAL"


# --- properties ------------------------------------------

def test_property_groups_and_properties_are_created_and_visible_at_once(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=10, faults=RELAXED)
    hs = hubspot_client(running)
    spec = PropertyCreate(name="strict_fit", label="Strict fit", type="enumeration",
                          field_type="select", group_name="strict_group",
                          options=[{"label": "Yes", "value": "yes", "hidden": False}])
    status, body = _refusal(hs.crm.properties.core_api.create, "contacts", spec)
    assert status == 400 and "strict_group" in body["message"]
    hs.crm.properties.groups_api.create("contacts", PropertyGroupCreate(
        name="strict_group", label="Strict group"))
    assert "strict_group" in {g.name for g in
                              hs.crm.properties.groups_api.get_all("contacts").results}
    hs.crm.properties.core_api.create("contacts", spec)
    assert hs.crm.properties.core_api.get_by_name("contacts", "strict_fit").group_name == \
        "strict_group"
    rid = str(_contacts(running, 1)[0])
    hs.crm.contacts.basic_api.update(rid, SimplePublicObjectInput(properties={"strict_fit": "yes"}))
    with pytest.raises(ApiException):
        hs.crm.contacts.basic_api.update(rid, SimplePublicObjectInput(
            properties={"strict_fit": "no"}))


FRESH = SandboxConfig(profile="fresh")


def test_a_fresh_portal_has_none_of_the_agents_properties_group_or_lists(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=10, faults=RELAXED, config=FRESH)
    hs = hubspot_client(running)
    names = {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert names.isdisjoint({"lead_grade", "lead_score", "nurture_track", "lead_segment",
                             "score_reasons", "mql_date", "salesforceleadid",
                             "salesforcecontactid"})
    assert "syncagent" not in {g.name for g in
                               hs.crm.properties.groups_api.get_all("contacts").results}
    for name in ("Newsletter", "High Fit Education"):
        assert _refusal(hs.crm.lists.lists_api.get_by_name, name, "0-1")[0] == 404


@pytest.mark.parametrize("profile", ["configured", "fresh"])
def test_salesforce_id_properties_exist_only_with_the_salesforce_integration(
        sandbox_factory: SandboxFactory, profile: str) -> None:
    """A configured portal has HubSpot's Salesforce integration installed; a fresh one not."""
    running = sandbox_factory(leads=10, faults=RELAXED, config=SandboxConfig(profile=profile))
    installed = profile == "configured"
    assert running.ctx.hs.salesforce_integration is installed
    hs = hubspot_client(running)
    names = {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert ({"salesforceleadid", "salesforcecontactid"} <= names) is installed
    write = BatchInputSimplePublicObjectBatchInput(inputs=[SimplePublicObjectBatchInput(
        id="1", properties={"salesforceleadid": "00Q000000000001AAA"})])
    if installed:
        hs.crm.contacts.batch_api.update(write)
    else:
        with pytest.raises(ApiException) as caught:
            hs.crm.contacts.batch_api.update(write)
        assert _body(caught)["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"


def test_number_of_employees_is_an_enumeration_of_ranges_in_a_fresh_portal(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=10, faults=RELAXED, config=FRESH)
    hs = hubspot_client(running)
    prop = hs.crm.properties.core_api.get_by_name("contacts", "numberofemployees")
    assert prop.type == "enumeration" and "100-500" in [o.value for o in prop.options]
    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.basic_api.update("1", SimplePublicObjectInput(
            properties={"numberofemployees": "250"}))
    assert "INVALID_OPTION" in caught.value.body
    hs.crm.contacts.basic_api.update("1", SimplePublicObjectInput(
        properties={"numberofemployees": "100-500"}))


# --- lifecycle stage ------------------------------------------

def test_lifecycle_stage_moves_forward_only_unless_cleared_first(box: RunningSandbox) -> None:
    hs = hubspot_client(box)
    rid = str(_contacts(box, 1)[0])

    def stage() -> str | None:
        return box.ctx.hs.get("contacts", int(rid)).properties.get("lifecyclestage")

    def set_stage(value: str) -> None:
        hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
            SimplePublicObjectBatchInput(id=rid, properties={"lifecyclestage": value})]))

    set_stage("salesqualifiedlead")
    set_stage("lead")                     # backwards: answered 200 and silently ignored
    assert stage() == "salesqualifiedlead"
    set_stage("")                         # cleared first...
    set_stage("lead")                     # ...then an earlier stage is taken
    assert stage() == "lead"
    set_stage("other")
    set_stage("subscriber")
    assert stage() == "other", "other is the last stage: nothing is before it"


# --- search lag ------------------------------------------

def test_search_lags_behind_writes_by_default(sandbox_factory: SandboxFactory) -> None:
    """The default profile's index lags (2 s): a change is found only once it has passed."""
    from syncagent.sandbox.common import FaultProfile

    running = sandbox_factory(leads=10, faults={k: v for k, v in RELAXED.items()})
    delay = FaultProfile().hubspot_search_delay_seconds
    assert 0 < delay <= 5
    hs = hubspot_client(running)
    hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": "laggy@newco.com"}))
    find = PublicObjectSearchRequest(filter_groups=[{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "laggy@newco.com"}]}])
    assert hs.crm.contacts.search_api.do_search(public_object_search_request=find).total == 0
    running.ctx.clock.advance(delay + 0.5)
    assert hs.crm.contacts.search_api.do_search(public_object_search_request=find).total == 1


# --- events ------------------------------------------

@pytest.mark.parametrize("tier", ["starter", "professional"])
def test_the_events_api_exists_only_at_enterprise(sandbox_factory: SandboxFactory,
                                                  tier: str) -> None:
    running = sandbox_factory(leads=10, faults=RELAXED,
                              config=SandboxConfig(hubspot_tier=tier))  # type: ignore[arg-type]
    with pytest.raises(Exception) as caught:
        hubspot_client(running).events.events_api.get_page(object_type="contact")
    assert getattr(caught.value, "status", None) == 403


def test_the_events_api_serves_no_marketing_email_events(box: RunningSandbox) -> None:
    stored = {e.event_type for e in box.ctx.hs.events}
    assert {"e_opened_email", "e_clicked_email"} <= stored   # they exist (for properties)...
    api = hubspot_client(box).events.events_api
    served: set[str] = set()
    after = None
    while True:
        page = api.get_page(object_type="contact", limit=1000, after=after)
        served |= {e.event_type for e in page.results}
        if page.paging is None or page.paging.next is None:
            break
        after = page.paging.next.after
    assert served and not served & {"e_opened_email", "e_clicked_email"}   # ...never served


@pytest.mark.parametrize("descending", [False, True])
def test_ten_thousand_events_in_one_second_page_back_complete_without_repeats(
        sandbox_factory: SandboxFactory, descending: bool) -> None:
    """Many events share each millisecond and were stored out of order: opaque `after`
    tokens still visit each one exactly once (5,000 such events used to come back as 5,801
    rows, 3,518 distinct)."""
    running = sandbox_factory(leads=20, seed=31, faults=RELAXED)
    hs = running.ctx.hs
    second = (running.ctx.clock.now() - timedelta(hours=1)).replace(microsecond=0)
    offsets = [random.Random(31).randrange(0, 1_000_000, 97) for _ in range(10_000)]
    contact = _contacts(running, 1)[0]
    with running.ctx.lock:
        burst = {hs.add_event("e_visited_page", contact, second + timedelta(microseconds=o),
                              {"hs_url": "https://x.io/"}).id for o in offsets}
    api = hubspot_client(running).events.events_api
    seen: list[str] = []
    after = None
    while True:
        page = api.get_page(object_type="contact", limit=700, after=after,
                            occurred_after=second - timedelta(milliseconds=1),
                            occurred_before=second + timedelta(seconds=1),
                            sort=["DESCENDING"] if descending else None)
        seen += [e.id for e in page.results]
        if page.paging is None or page.paging.next is None:
            break
        after = page.paging.next.after
    assert len(seen) == len(set(seen)) == 10_000
    assert set(seen) == burst

