"""An update planned while its outbox row is in flight is not lost: the flight lands with
the values it carries, and the person is planned again (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from state import models as m
from state.store import NewOutboxRow, OutboxResult, StateStore

T0 = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
KEY = "hubspot:contacts:701:update"


def _update(person: int, fields: dict[str, Any]) -> NewOutboxRow:
    return NewOutboxRow("hubspot", "contacts", "update", fields, KEY, remote_id="701",
                        person_id=person)


def _row(store: StateStore) -> tuple[str, dict[str, Any]]:
    with store.sessions.read() as session:
        status, fields = session.execute(select(m.OutboxRow.status, m.OutboxRow.fields)
                                         .where(m.OutboxRow.idempotency_key == KEY)).one()
    return status, fields


def test_an_update_planned_while_its_row_is_in_flight_plans_the_person_again(
    store: StateStore,
) -> None:
    """A killed cycle left the contact's row claimed (or another agent's push holds it) when
    the next evaluation plans the cross id: the flight sends the older values and is marked
    done, so the person must stay dirty to have the cross id planned again."""
    (person,) = store.persons.create(["emily@example.com"], now=T0)
    store.outbox.enqueue([_update(person, {"lead_score": "50"})], now=T0)
    (flying,) = store.outbox.claim("pusher", 10, now=T0)
    store.commit_evaluation([_update(person, {"lead_score": "50", "salesforceleadid": "00Q1"})],
                            [], {person: None}, {}, now=T0)
    store.outbox.complete([OutboxResult(flying.id, "ok", result_id="701")], now=T0)
    assert _row(store) == ("done", {"lead_score": "50"}), "the flight lands as it was sent"
    assert store.persons.to_evaluate(T0) == [person], "and the newer values are planned again"


def test_an_update_planned_over_a_pending_or_done_row_replaces_it(store: StateStore) -> None:
    """The ordinary case keeps its rule: the newer values are queued, the person evaluated."""
    (person,) = store.persons.create(["emily@example.com"], now=T0)
    store.outbox.enqueue([_update(person, {"lead_score": "50"})], now=T0)
    store.commit_evaluation([_update(person, {"lead_score": "51"})], [], {person: None}, {},
                            now=T0)
    assert _row(store) == ("pending", {"lead_score": "51"})
    (sent,) = store.outbox.claim("pusher", 10, now=T0)
    store.outbox.complete([OutboxResult(sent.id, "ok", result_id="701")], now=T0)
    store.commit_evaluation([_update(person, {"lead_score": "52"})], [], {person: None}, {},
                            now=T0)
    assert _row(store) == ("pending", {"lead_score": "52"})
    assert store.persons.to_evaluate(T0) == []
