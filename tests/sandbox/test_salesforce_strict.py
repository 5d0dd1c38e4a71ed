"""The Salesforce sandbox is as strict as a real org, in both profiles (issue 11).

Every test drives the unmodified simple-salesforce. ``configured`` is the shared session
sandbox (reset before and after a test that changes it); ``fresh`` is a new org with none of
the agent's fields, standard Lead Status values only, and the legacy logins off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceMalformedRequest,
)

from syncagent.sandbox.salesforce import LOGIN_HOSTS, sandbox_session
from syncagent.sandbox.salesforce.schema import STANDARD_LEAD_STATUSES
from syncagent.sandbox.server import RunningSandbox
from tests.sandbox.conftest import fresh_org, reset_around

MY_DOMAIN = "syncagent-sandbox.my"


@pytest.fixture(scope="module")
def fresh() -> Iterator[RunningSandbox]:
    """A fresh org (module scope: tests that change it reset it first)."""
    yield from fresh_org(leads=40, seed=23)


@pytest.fixture
def configured(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    yield from reset_around(sandbox)


@pytest.fixture(params=["configured", "fresh"])
def org(request: pytest.FixtureRequest, sandbox: RunningSandbox,
        fresh: RunningSandbox) -> Iterator[RunningSandbox]:
    """Each profile in turn, reset before and after."""
    yield from reset_around(sandbox if request.param == "configured" else fresh)


def session_client(running: RunningSandbox) -> Salesforce:
    return Salesforce(instance_url=running.url, session_id=running.info["salesforce"][
        "session_id"], session=sandbox_session(running.url, running.ca_cert))


def soap_login(running: RunningSandbox, version: str) -> tuple[str, str]:
    info = running.info["salesforce"]
    return SalesforceLogin(username=info["username"], password=info["password"],
                           security_token=info["security_token"], sf_version=version,
                           session=sandbox_session(running.url, running.ca_cert))


def malformed(call: object) -> dict[str, str]:
    """The first error of a 400 answer (simple-salesforce raises SalesforceMalformedRequest)."""
    assert callable(call)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        call()
    content = caught.value.content
    assert isinstance(content, list)
    return dict(content[0])


# ------------------------------------------------------------------------------ logins


def test_soap_login_is_gone_from_api_v65_in_every_org(org: RunningSandbox) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        soap_login(org, "65.0")
    assert caught.value.code == "UNSUPPORTED_API_VERSION"


def test_soap_login_works_up_to_v64_only_where_the_org_allows_it(
        sandbox: RunningSandbox, fresh: RunningSandbox) -> None:
    session_id, _ = soap_login(sandbox, "64.0")
    assert session_id
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        soap_login(fresh, "64.0")
    assert caught.value.code == "INVALID_OPERATION"
    assert "disabled" in caught.value.auth_message


def test_oauth_password_flow_is_blocked_in_a_fresh_org(fresh: RunningSandbox) -> None:
    info = fresh.info["salesforce"]
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(username=info["username"], password=info["password"],
                   consumer_key=info["consumer_key"], consumer_secret=info["consumer_secret"],
                   session=sandbox_session(fresh.url, fresh.ca_cert))
    assert caught.value.code == "unsupported_grant_type"


def test_jwt_bearer_and_client_credentials_work_in_a_fresh_org(fresh: RunningSandbox) -> None:
    info = fresh.info["salesforce"]
    jwt_client = Salesforce(username=info["username"], consumer_key=info["consumer_key"],
                            privatekey_file=info["jwt_private_key"], version="66.0",
                            session=sandbox_session(fresh.url, fresh.ca_cert))
    assert jwt_client.query("SELECT COUNT() FROM Lead")["totalSize"] >= 40
    session = sandbox_session(fresh.url, fresh.ca_cert,
                              login_hosts=(*LOGIN_HOSTS, f"{MY_DOMAIN}.salesforce.com"))
    cc_client = Salesforce(consumer_key=info["consumer_key"], domain=MY_DOMAIN,
                           consumer_secret=info["consumer_secret"], session=session)
    assert cc_client.query("SELECT COUNT() FROM User")["totalSize"] > 1


# ------------------------------------------------------------------------------ fields


def test_a_field_the_org_lacks_fails_the_whole_query_with_invalid_field(
        org: RunningSandbox) -> None:
    sf = session_client(org)
    missing = "Lead_Score__c" if org is not None and org.ctx.config.fresh else "Lead_Scor__c"
    error = malformed(lambda: sf.query(f"SELECT Id, Email, {missing} FROM Lead"))
    assert error["errorCode"] == "INVALID_FIELD"
    assert f"No such column '{missing}' on entity 'Lead'" in error["message"]


def test_a_fresh_org_has_no_agent_fields_and_standard_lead_statuses_only(
        fresh: RunningSandbox) -> None:
    sf = session_client(fresh)
    for sobject in ("Lead", "Contact", "User", "Task"):
        fields = getattr(sf, sobject).describe()["fields"]
        assert not [f["name"] for f in fields if f["custom"]], sobject
    status = next(f for f in sf.Lead.describe()["fields"] if f["name"] == "Status")
    assert tuple(p["value"] for p in status["picklistValues"]) == STANDARD_LEAD_STATUSES
    used = {r["Status"] for r in sf.query_all("SELECT Status FROM Lead")["records"]}
    assert used <= set(STANDARD_LEAD_STATUSES)
    error = malformed(lambda: sf.Lead.update(
        sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"], {"Status": "Qualified"}))
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_an_unreadable_field_is_absent_from_describe_and_fails_queries(
        configured: RunningSandbox) -> None:
    sf = session_client(configured)
    assert sf.query("SELECT Id, Segment__c FROM Lead LIMIT 1")["totalSize"] == 1
    configured.revoke_read("Lead.Segment__c")
    names = {f["name"] for f in sf.Lead.describe()["fields"]}
    assert "Segment__c" not in names and "Lead_Score__c" in names
    error = malformed(lambda: sf.query("SELECT Id, Segment__c FROM Lead"))
    assert error["errorCode"] == "INVALID_FIELD"
    lead_id = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    error = malformed(lambda: sf.Lead.update(lead_id, {"Segment__c": "leave"}))
    assert error["errorCode"] == "INVALID_FIELD"
    # Contact.Segment__c is another field, still readable
    assert "Segment__c" in {f["name"] for f in sf.Contact.describe()["fields"]}


def test_a_removed_field_is_gone_until_reset(configured: RunningSandbox) -> None:
    sf = session_client(configured)
    configured.remove_field("User.Territory__c")
    assert "Territory__c" not in {f["name"] for f in sf.User.describe()["fields"]}
    error = malformed(lambda: sf.query("SELECT Id, Territory__c FROM User"))
    assert error["errorCode"] == "INVALID_FIELD"
    error = malformed(lambda: sf.query("SELECT Id, Manager.Territory__c FROM User"))
    assert "No such column 'Territory__c' on entity 'User'" in error["message"]
    configured.reset()
    assert sf.query("SELECT Id, Territory__c FROM User LIMIT 1")["totalSize"] == 1


def test_sandbox_controls_refuse_unknown_fields(configured: RunningSandbox) -> None:
    for path, field in (("remove-field", "User.Nope__c"), ("revoke-read", "Lead.Email")):
        answer = requests.post(f"{configured.url}/__sandbox/salesforce/{path}",
                               json={"field": field}, verify=configured.ca_cert, timeout=10)
        assert answer.status_code == 404, path


# ------------------------------------------------------------------------------ case


def test_field_names_are_case_insensitive_in_soql_and_in_collection_bodies(
        org: RunningSandbox) -> None:
    sf = session_client(org)
    rows = sf.query("select id, EMAIL, lastname from lead order by ID limit 2")["records"]
    assert [set(r) - {"attributes"} for r in rows] == [{"Id", "Email", "LastName"}] * 2
    # Salesforce's own sObject Collections examples send "id" and "attributes" in lower case
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "id": rows[0]["Id"], "title": "Head of Ops"},
        {"attributes": {"type": "Lead"}, "ID": rows[1]["Id"], "TITLE": "CFO"}]}
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert [r["success"] for r in results] == [True, True], results
    titles = {r["Id"]: r["Title"] for r in sf.query(
        f"SELECT Id, Title FROM Lead WHERE Id IN ('{rows[0]['Id']}', '{rows[1]['Id']}')"
    )["records"]}
    assert titles == {rows[0]["Id"]: "Head of Ops", rows[1]["Id"]: "CFO"}


# ------------------------------------------------------------------------------ aggregates


def test_count_answers_total_size_and_no_records(org: RunningSandbox) -> None:
    sf = session_client(org)
    every = sf.query_all("SELECT Id FROM Lead WHERE IsConverted = false")["records"]
    answer = sf.query("SELECT COUNT() FROM Lead WHERE IsConverted = false")
    assert answer["totalSize"] == len(every) > 0 and answer["records"] == []


def test_group_by_answers_aggregate_results_named_expr0(org: RunningSandbox) -> None:
    sf = session_client(org)
    statuses = Counter(r["Status"] for r in sf.query_all("SELECT Status FROM Lead")["records"])
    rows = sf.query("SELECT Status, COUNT(Id) FROM Lead GROUP BY Status")["records"]
    assert all(r["attributes"]["type"] == "AggregateResult" for r in rows)
    assert {r["Status"]: r["expr0"] for r in rows} == dict(statuses)
    aliased = sf.query("SELECT LeadSource, COUNT(Id) n, MAX(CreatedDate) FROM Lead "
                       "GROUP BY LeadSource ORDER BY LeadSource LIMIT 2")["records"]
    assert len(aliased) == 2 and set(aliased[0]) == {"attributes", "LeadSource", "n", "expr0"}
    total = sf.query("SELECT COUNT(Id) FROM Lead")["records"]
    assert [r["expr0"] for r in total] == [sum(statuses.values())]
    named = sf.query("SELECT Status s, COUNT(Id) FROM Lead GROUP BY Status")["records"]
    assert {r["s"]: r["expr0"] for r in named} == dict(statuses)


def test_an_ungrouped_field_in_an_aggregate_query_is_malformed(org: RunningSandbox) -> None:
    sf = session_client(org)
    error = malformed(lambda: sf.query("SELECT Status, Email, COUNT(Id) FROM Lead "
                                       "GROUP BY Status"))
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert "Field must be grouped or aggregated: Email" in error["message"]
    error = malformed(lambda: sf.query("SELECT Status s FROM Lead"))
    assert error["errorCode"] == "MALFORMED_QUERY"


# ------------------------------------------------------------------------------ picklists


def test_restricted_picklists_reject_unknown_values_unrestricted_ones_accept_them(
        configured: RunningSandbox) -> None:
    sf = session_client(configured)
    lead_id = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    error = malformed(lambda: sf.Lead.update(lead_id, {"Lifecycle_Stage__c": "Hot Prospect"}))
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sf.Lead.update(lead_id, {"Segment__c": "made-up-segment"}) == 204
