"""The Salesforce connector on strict orgs: logins a new org refuses, fields that are missing
or unreadable, and an org that is not set up for the agent (issue 11)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from connectors.base import Cursor, Page, WriteItem
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.streams import STREAMS, with_mapped_fields
from syncagent.errors import AuthError, FatalError
from syncagent.sandbox.server import RunningSandbox
from tests.connectors.conftest import sf_connector
from tests.sandbox.conftest import fresh_org, reset_around


@pytest.fixture(scope="module")
def new_org() -> Iterator[RunningSandbox]:
    yield from fresh_org(leads=25, seed=43)


@pytest.fixture
def org(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    """The shared configured sandbox, reset before and after."""
    yield from reset_around(sandbox)


def jwt_connector(running: RunningSandbox, **overrides: Any) -> SalesforceConnector:
    info = running.info["salesforce"]
    return sf_connector(running, auth="jwt", consumer_key=info["consumer_key"],
                        private_key_file=info["jwt_private_key"], **overrides)


def read_all(conn: SalesforceConnector, running: RunningSandbox,
             streams: tuple[str, ...]) -> list[Page]:
    cursors: dict[str, Cursor | None] = dict.fromkeys(streams)
    return list(conn.read_many(cursors, cycle_start=running.ctx.clock.now()))


def test_jwt_bearer_logs_in_to_a_fresh_org(new_org: RunningSandbox) -> None:
    conn = jwt_connector(new_org)
    pages = read_all(conn, new_org, ("Lead",))
    assert sum(len(p.records) for p in pages) >= 25


@pytest.mark.parametrize(("auth", "code"), [("password", "INVALID_OPERATION"),
                                            ("oauth_password", "unsupported_grant_type")])
def test_a_fresh_org_refuses_legacy_logins_with_a_hint_to_use_jwt(
        new_org: RunningSandbox, auth: str, code: str) -> None:
    info = new_org.info["salesforce"]
    conn = sf_connector(new_org, auth=auth, consumer_key=info["consumer_key"],
                        consumer_secret=SecretStr(info["consumer_secret"]))
    with pytest.raises(AuthError) as caught:
        read_all(conn, new_org, ("Lead",))
    assert caught.value.fields["code"] == code
    assert "salesforce.auth: jwt" in caught.value.hint


def test_soap_login_still_works_where_allowed_with_a_deprecation_warning(
        org: RunningSandbox) -> None:
    conn = sf_connector(org)     # auth=password, API 59.0
    with capture_logs() as logs:
        read_all(conn, org, ("User",))
    warnings = [e for e in logs if e["event"] == "salesforce.legacy_login"]
    assert len(warnings) == 1 and "jwt" in warnings[0]["hint"]


def test_preflight_names_every_missing_output_field_of_a_fresh_org(
        new_org: RunningSandbox) -> None:
    conn = jwt_connector(new_org)
    with pytest.raises(FatalError) as caught:
        conn.preflight()
    missing = caught.value.fields["missing"]
    assert "Lead.Lead_Grade__c" in missing and "Task.Idempotency_Key__c" in missing
    assert "syncagent doctor" in caught.value.hint
    assert conn.api_calls == 1        # every describe in one Composite call
    assert new_org.stats()["records_written"] == {}


def test_preflight_looks_again_after_a_failure_so_a_fixed_org_passes(
        org: RunningSandbox) -> None:
    org.remove_field("Lead.Lead_Grade__c")
    conn = jwt_connector(org)
    with pytest.raises(FatalError) as caught:
        conn.preflight()
    assert caught.value.fields["missing"] == ["Lead.Lead_Grade__c"]
    org.reset()                                 # the admin created the field again
    conn.preflight()                            # (after a re-login: reset ends sessions)
    assert conn.client.reauths == 1


def test_preflight_passes_on_a_configured_org_and_describes_once(org: RunningSandbox) -> None:
    conn = jwt_connector(org)
    conn.preflight()
    conn.preflight()
    assert conn.api_calls == 1


def test_a_removed_field_is_left_out_and_its_feature_reported_off(org: RunningSandbox) -> None:
    org.remove_field("User.Territory__c")
    conn = jwt_connector(org)
    conn.preflight()                          # the describe already lacks it
    pages = read_all(conn, org, ("User", "Lead"))
    users = [r for p in pages if p.stream == "User" for r in p.records]
    assert users and all("Territory__c" not in u.fields for u in users)
    assert all("Out_Of_Office__c" in u.fields for u in users)
    assert set(conn.features_off) == {"territory routing"}
    assert "User.Territory__c" in conn.features_off["territory routing"]


def test_access_revoked_between_reads_refreshes_the_describe_and_the_pull_goes_on(
        org: RunningSandbox) -> None:
    conn = jwt_connector(org)
    conn.preflight()
    first = read_all(conn, org, ("Lead",))
    assert any("Segment__c" in r.fields for p in first for r in p.records)
    org.revoke_read("Lead.Segment__c")
    before = conn.api_calls
    with capture_logs() as logs:
        again = read_all(conn, org, ("Lead",))
    leads = [r for p in again for r in p.records]
    assert leads and all("Segment__c" not in r.fields for r in leads)
    assert all("Lead_Grade__c" in r.fields for r in leads)
    assert conn.api_calls - before == 3     # refused query, describe, query again
    assert conn.features_off == {"segment": "Lead.Segment__c does not exist or is not readable"}
    assert [e["field"] for e in logs if e["event"] == "salesforce.field_unavailable"] == [
        "Segment__c"]


def test_writes_leave_out_a_field_the_user_cannot_edit_and_keep_the_rest(
        org: RunningSandbox) -> None:
    org.revoke_read("Lead.Segment__c")
    conn = jwt_connector(org)
    conn.preflight()
    sf_lead = next(r for r in org.ctx.sf.records("Lead") if not r["IsConverted"])
    [result] = conn.write("Lead", "update", [WriteItem(
        fields={"Lead_Grade__c": "B", "Segment__c": "leave"}, id=sf_lead["Id"])])
    assert result.status == "ok"
    stored = org.ctx.sf.get("Lead", sf_lead["Id"])
    assert stored is not None and stored["Lead_Grade__c"] == "B"
    assert "segment" in conn.features_off


def test_every_mapped_field_is_read_by_its_stream() -> None:
    table = with_mapped_fields({"Lead": ["Rating", "Email"], "Contact": ["Department"]})
    by_name = {s.name: s for s in table}
    assert by_name["Lead"].fields.count("Rating") == 1 and by_name["Lead"].fields.count(
        "Email") == 1
    assert by_name["Contact"].fields == next(s for s in STREAMS if s.name == "Contact").fields
    assert by_name["User"] == next(s for s in STREAMS if s.name == "User")
