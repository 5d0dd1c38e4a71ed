"""Schema facts one connector read, handed to the next one (the next process): trusted while
fresh, read again when stale, and read again at once when a write is refused for a field or
property they still list (issue 9: an idle `sync --once` pays no start-up schema read)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import WriteItem
from syncagent.sandbox.server import RunningSandbox
from tests.connectors.conftest import hs_connector
from tests.connectors.test_salesforce_strict_org import jwt_connector
from tests.sandbox.conftest import reset_around

FAST = {"hubspot_searches_per_second": 100, "hubspot_requests_per_10s": 10_000,
        "hubspot_search_delay_seconds": 0}


@pytest.fixture
def org(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    yield from reset_around(sandbox)


def _aged(facts: dict[str, Any], age: timedelta) -> dict[str, Any]:
    at = (datetime.now(UTC) - age).isoformat()
    return {obj: {**entry, "read_at": at} for obj, entry in facts.items()}


def _open_lead(org: RunningSandbox) -> str:
    return str(next(r for r in org.ctx.sf.records("Lead") if not r["IsConverted"])["Id"])


def test_a_kept_describe_spares_the_next_preflight_until_it_is_stale(
        org: RunningSandbox) -> None:
    first = jwt_connector(org)
    first.preflight()
    facts = first.schema_facts()
    assert facts and "Lead" in facts and first.schema_facts() is None   # handed over once
    assert "u" in facts["Lead"]["fields"]["Lead_Grade__c"]
    fresh = jwt_connector(org)
    fresh.adopt_schema_facts(facts)
    fresh.preflight()
    assert fresh.api_calls == 0 and fresh.schema_facts() is None
    stale = jwt_connector(org)
    stale.adopt_schema_facts(_aged(facts, timedelta(minutes=16)))
    stale.preflight()
    assert stale.api_calls == 1                      # every describe again, in one call
    assert stale.schema_facts() is not None


def test_a_write_refused_for_a_field_the_kept_describe_lists_reads_it_again(
        org: RunningSandbox) -> None:
    first = jwt_connector(org)
    first.preflight()
    facts = first.schema_facts()
    assert facts is not None
    org.remove_field("Lead.Score_Reasons__c")        # deleted between two processes
    org.remove_field("Lead.Industry")
    conn = jwt_connector(org)
    conn.adopt_schema_facts(facts)
    conn.preflight()
    lead = _open_lead(org)
    fields = {"Lead_Grade__c": "B", "Score_Reasons__c": "why", "Industry": "Retail"}
    [result] = conn.write("Lead", "update", [WriteItem(fields=fields, id=lead)])
    assert result.status == "ok"
    stored = org.ctx.sf.get("Lead", lead)
    assert stored is not None and stored["Lead_Grade__c"] == "B"
    # the optional feature's field is off, as a fresh describe would have it; the mapped
    # field stays a refused field for the data-quality ledger, as it is today
    assert [e.field for e in result.dropped] == ["Industry"]
    assert set(conn.features_off) == {"score reasons"}
    kept = conn.schema_facts()
    assert kept is not None and "Score_Reasons__c" not in kept["Lead"]["fields"]
    before = conn.api_calls
    [again] = conn.write("Lead", "update", [WriteItem(fields=fields, id=lead)])
    assert again.status == "ok" and [e.field for e in again.dropped] == ["Industry"]
    assert conn.api_calls - before == 2    # refused, sent again: no second describe


def test_kept_portal_properties_spare_the_next_read_and_a_gone_one_is_read_again(
        sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=10, faults=FAST)
    first = hs_connector(sandbox)
    names = first.contact_properties()
    facts = first.schema_facts()
    assert names and facts is not None and first.schema_facts() is None
    conn = hs_connector(sandbox)
    # the kept facts list a property that was deleted since
    conn.adopt_schema_facts({**facts, "names": [*facts["names"], "ghost_property"]})
    assert "ghost_property" in (conn.contact_properties() or ())
    assert conn.calls.by_operation().get("properties", 0) == 0
    contact = str(min(sandbox.ctx.hs.store("contacts").records))
    [result] = conn.write("contacts", "update", [WriteItem(
        fields={"lead_grade": "B", "ghost_property": "x"}, id=contact)])
    assert result.code == "PROPERTY_DOESNT_EXIST"
    assert "ghost_property" not in (conn.contact_properties() or ())
    assert conn.calls.by_operation()["properties"] == 1
    stale = hs_connector(sandbox)
    stale.adopt_schema_facts({**facts, "read_at": _aged({"x": facts}, timedelta(
        minutes=16))["x"]["read_at"]})
    stale.preflight()                        # a cycle's start judges the kept read's age
    assert stale.calls.by_operation()["properties"] == 1
