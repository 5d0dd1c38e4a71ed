"""When the portal's contact properties are read again (issue 18: `properties` at its minimum,
one read a process): a read's age is judged when a cycle starts (its preflight), never in the
middle of a cycle however long it runs; a write refused for a property that is gone reads
again at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from connectors.base import WriteRef, WriteResult
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.schema import GONE_CODE, REQUIRED_PROPERTIES, SCHEMA_TTL, PortalSchema


class Portal:
    """A client that answers `properties` with the names it holds, and counts the calls."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.reads = 0

    def properties(self, object: str) -> dict[str, Any]:
        assert object == "contacts"
        self.reads += 1
        return {"results": [{"name": n} for n in sorted(self.names)]}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _schema(names: set[str]) -> tuple[PortalSchema, Portal, Clock]:
    portal, clock = Portal(names), Clock()
    return PortalSchema(cast(HubSpotClient, portal), clock=clock), portal, clock


def test_a_cycle_longer_than_the_ttl_keeps_the_read_it_started_with() -> None:
    schema, portal, clock = _schema({*REQUIRED_PROPERTIES})
    assert schema.missing_required() == []           # the cycle's preflight reads
    for _ in range(4):                               # an hour of backfill, planning at the end
        clock.now += SCHEMA_TTL
        assert schema.contact_properties() == frozenset(REQUIRED_PROPERTIES)
    assert portal.reads == 1


def test_the_next_cycle_reads_a_stale_read_again_and_sees_what_changed() -> None:
    schema, portal, clock = _schema({*REQUIRED_PROPERTIES})
    schema.missing_required()
    portal.names.add("salesforceleadid")             # the integration installed meanwhile
    clock.now += SCHEMA_TTL - timedelta(seconds=1)
    schema.missing_required()                        # a cycle soon after: the read stands
    assert portal.reads == 1
    clock.now += timedelta(seconds=1)
    schema.missing_required()                        # a cycle once it is stale: read again
    assert portal.reads == 2
    assert "salesforceleadid" in (schema.contact_properties() or ())


def test_a_write_refused_for_a_gone_property_reads_again_at_once_mid_cycle() -> None:
    schema, portal, clock = _schema({*REQUIRED_PROPERTIES, "ghost"})
    schema.missing_required()
    portal.names.discard("ghost")
    clock.now += timedelta(minutes=1)
    schema.after_refusals([WriteResult(WriteRef("contacts", "1"), "rejected", code=GONE_CODE)])
    assert "ghost" not in (schema.contact_properties() or ())
    assert portal.reads == 2
    schema.contact_properties()
    assert portal.reads == 2


def test_adopted_facts_are_judged_by_age_at_the_cycle_start() -> None:
    first, _, clock = _schema({*REQUIRED_PROPERTIES})
    first.missing_required()
    facts = first.facts()
    assert facts is not None
    clock.now += SCHEMA_TTL + timedelta(seconds=1)
    fresh, portal, _ = _schema({*REQUIRED_PROPERTIES})
    fresh.adopt(facts)
    fresh.missing_required()
    assert portal.reads == 0, "the kept facts are younger than the TTL by the new clock"
    stale = PortalSchema(cast(HubSpotClient, portal), clock=clock)
    stale.adopt(facts)
    stale.missing_required()
    assert portal.reads == 1
