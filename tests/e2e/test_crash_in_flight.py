"""A cross id planned while its contact's outbox row is in flight still lands.

What a SIGKILL in test_crash.py hit at a rare moment, made deterministic: a killed cycle
leaves a HubSpot contact's update row claimed (or another agent's push holds it) while the
next evaluation plans that contact's `salesforceleadid`. The planned update could not
replace the row in flight; the flight then landed with the older values and was marked done,
and the person, stored as evaluated, was never planned again: the contact kept no cross id.
"""

from __future__ import annotations

import threading
from typing import Any

from hubspot.crm.contacts import SimplePublicObjectInput

from state.store import NewOutboxRow, OutboxItem, OutboxResult, StateStore
from syncagent.pipeline.cycle import CycleOptions, run_cycle
from tests.e2e.conftest import World, WorldFactory

ELSEWHERE = "another-host:4242"   # a holder this host cannot judge gone: its claim holds


def _cycles_until_quiet(world: World, most: int = 4) -> None:
    for _ in range(most):
        report = run_cycle(world.agent, threading.Event(), CycleOptions())
        if not any(report.written.values()) and not any(report.created.values()):
            return
    raise AssertionError(f"no quiet cycle in {most}: {report.as_json()}")


def _linked_contact(world: World) -> tuple[str, str]:
    """(contact id, Lead id) of a contact whose salesforceleadid names an open Lead."""
    ctx = world.sandbox.ctx
    with ctx.lock:
        leads = {r["Id"] for r in ctx.sf.records("Lead")
                 if not r.get("IsDeleted") and not r.get("IsConverted")}
        return next((str(c.id), c.properties["salesforceleadid"])
                    for c in ctx.hs.store("contacts").records.values()
                    if not c.archived and c.properties.get("salesforceleadid") in leads)


def _cross_id(world: World, contact_id: str) -> Any:
    with world.sandbox.ctx.lock:
        record = world.sandbox.ctx.hs.store("contacts").records[int(contact_id)]
        return record.properties.get("salesforceleadid")


def _claim_elsewhere(store: StateStore, contact_id: str, fields: dict[str, Any]
                     ) -> OutboxItem:
    """The contact's update row, re-armed with ``fields`` and claimed by another process."""
    key = f"hubspot:contacts:{contact_id}:update"
    store.outbox.enqueue([NewOutboxRow("hubspot", "contacts", "update", fields, key,
                                       remote_id=contact_id)])
    (flying,) = store.outbox.claim(ELSEWHERE, 1, system="hubspot", object_name="contacts",
                                   operation="update", claim_seconds=3600)
    assert flying.idempotency_key == key
    return flying


def test_a_cross_id_planned_while_the_contacts_row_is_in_flight_still_lands(
    world_factory: WorldFactory,
) -> None:
    world = world_factory(leads=60, seed=11)
    store = world.agent.store
    _cycles_until_quiet(world)
    contact_id, lead_id = _linked_contact(world)

    # Someone blanks the cross id: the agent's next evaluation plans it back onto the contact
    # while the contact's row is in flight, held by a push that sends other values.
    world.hubspot().crm.contacts.basic_api.update(
        contact_id, SimplePublicObjectInput(properties={"salesforceleadid": ""}))
    in_flight_values = {"lead_grade": "A"}
    flying = _claim_elsewhere(store, contact_id, in_flight_values)
    world.sandbox.ctx.clock.advance(5)      # past the search index's lag
    run_cycle(world.agent, threading.Event(), CycleOptions())
    assert not _cross_id(world, contact_id), "the row was in flight: nothing sent yet"

    # The flight lands as its holder would record it, with the values it carried.
    world.hubspot().crm.contacts.basic_api.update(
        contact_id, SimplePublicObjectInput(properties=in_flight_values))
    store.outbox.complete([OutboxResult(flying.id, "ok", result_id=contact_id)])
    store.mirror.record_written("hubspot", "contacts", {contact_id: in_flight_values})
    world.sandbox.ctx.clock.advance(5)

    _cycles_until_quiet(world)
    assert _cross_id(world, contact_id) == lead_id
