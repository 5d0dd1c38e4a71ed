"""HubSpot calls at their floor: engagement searches keep to scoring signals, association
look-ups carry up to 1,000 ids across search pages, task creates are looked up only when an
earlier attempt may have landed, and lifecycle clears are gathered into as few calls as the
batch size allows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from connectors.base import WriteItem
from connectors.hubspot import streams
from connectors.hubspot.associations import Associations
from connectors.hubspot.sweep import SweepState, max_groups, search_body
from state.outbox import OutboxItem
from syncagent.pipeline import push
from tests.connectors.conftest import hs_connector
from tests.connectors.test_task_writes import _agent_tasks, _contacts, _tasks
from tests.fixtures.sandbox import SandboxFactory

# every value the sandbox's portal offers for each filtered property
VALUES = {"emails": ("hs_email_status", ["BOUNCED", "SENT", "SENDING", "SCHEDULED", "FAILED", ""]),
          "meetings": ("hs_meeting_outcome", ["COMPLETED", "SCHEDULED", "RESCHEDULED",
                                              "NO_SHOW", "CANCELED", ""]),
          "tasks": ("hs_task_status", ["COMPLETED", "NOT_STARTED", "IN_PROGRESS",
                                       "WAITING", "DEFERRED", ""])}


def _passes(filters: tuple[dict[str, Any], ...], props: dict[str, Any]) -> bool:
    for f in filters:
        value = props.get(f["propertyName"])
        if f["operator"] == "EQ" and value != f["value"]:
            return False
        if f["operator"] == "IN" and value not in f["values"]:
            return False
    return True


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_the_signal_filter_keeps_exactly_the_engagements_that_score(kind: str) -> None:
    """A filter that dropped a signal would lose points silently: every value is checked
    against engagement_kind, the function that turns a row into an activity."""
    prop, values = VALUES[kind]
    filters = streams.SIGNAL_FILTERS[kind]
    for value in values:
        props = {prop: value, "hs_meeting_title": "Demo"}
        assert _passes(filters, props) == (streams.engagement_kind(kind, props) is not None), \
            (kind, value)


def test_a_filtered_search_stays_within_hubspots_filter_limits() -> None:
    spec = streams.STREAMS_BY_NAME["meetings"]
    groups = max_groups(spec)
    skips = [[10 * n + 1, 10 * n + 2] for n in range(groups - 1)]
    body = search_body(spec, SweepState(upper=1000, lower=0, skip=skips), "55", None)
    assert len(body["filterGroups"]) == groups <= 5
    assert sum(len(g["filters"]) for g in body["filterGroups"]) <= 18
    assert all(any(f["propertyName"] == "hs_meeting_outcome" for f in g["filters"])
               for g in body["filterGroups"])


class _Counting(Associations):
    def __init__(self) -> None:
        self.calls: list[int] = []

    def contacts_of(self, object_type: str, ids: list[str]) -> dict[str, list[str]]:
        self.calls.append(len(ids))
        return {i: [f"c{i}"] for i in ids}


def test_association_lookups_fill_1000_ids_across_pages_and_keep_page_order() -> None:
    sizes = [200, 0, 150, 200, 200, 200, 200, 37, 200]       # 1,387 ids in nine pages
    pages: list[tuple[list[str], int]] = []
    n = 0
    for number, size in enumerate(sizes):
        pages.append(([str(n + k) for k in range(size)], number))
        n += size
    handed: list[int] = []

    def source() -> Iterator[tuple[list[str], int]]:
        for ids, number in pages:
            # a page is read only after every page before it was handed on, or was held
            assert number - len(handed) <= 7
            yield ids, number

    linker = _Counting()
    for number, links in linker.linked("calls", source()):
        handed.append(number)
        assert links == {i: [f"c{i}"] for i in pages[number][0]}
    assert handed == list(range(len(sizes)))
    assert linker.calls == [1000, 387]


def test_a_first_send_of_tasks_makes_no_lookup_and_a_resend_finds_them(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=40, faults={"hubspot_search_delay_seconds": 30})
    owner = next(iter(running.ctx.hs.owners))
    items = [replace(item, never_sent=True) for item in _tasks(running, _contacts(running, 5),
                                                               owner)]
    conn = hs_connector(running)
    first = conn.write("tasks", "create", items)
    assert all(r.ok and r.created is not False for r in first)
    assert conn.tasks.lookup_calls == 0
    # the outbox lost the answer (a killed process): the row comes back without the mark
    again = hs_connector(running).write("tasks", "create",
                                        [replace(i, never_sent=False) for i in items])
    assert [r.created for r in again] == [False] * 5
    assert [r.id for r in again] == [r.id for r in first]
    assert all(len(ids) == 1 for ids in _agent_tasks(running).values())


def test_the_outbox_marks_only_a_first_clean_claim_as_never_sent() -> None:
    def item(attempts: int, code: str | None) -> OutboxItem:
        return OutboxItem(1, "hubspot", "tasks", "create", None, 7, {}, "k", attempts, code)

    assert item(1, None).never_sent
    assert not item(2, None).never_sent              # an expired claim taken again
    assert not item(1, "CLAIM_ORPHANED").never_sent  # a killed process's claim, released
    assert not item(1, "OUTCOME_UNKNOWN").never_sent


def test_updates_that_clear_a_field_first_are_sent_together() -> None:
    """250 updates, one in ten moving the stage back: the 25 clears go in one batch, so the
    clear costs one call, not one per batch of 100."""
    rows = [OutboxItem(n, "hubspot", "contacts", "update", str(n), n,
                       {"grade": "A", **({"__clear_first": ["lifecyclestage"]}
                                         if n % 10 == 0 else {})}, f"k{n}", 1)
            for n in range(250)]
    ordered = push._clears_first(rows)
    batches = [ordered[i:i + 100] for i in range(0, 250, 100)]
    with_clears = [b for b in batches if any(r.fields.get("__clear_first") for r in b)]
    assert len(with_clears) == 1 and len(ordered) == 250
    assert [r.id for r in ordered if not r.fields.get("__clear_first")] == \
        [n for n in range(250) if n % 10]


def test_never_sent_travels_from_the_outbox_row_to_the_write_item() -> None:
    seen: list[WriteItem] = []

    class Capture:
        def write(self, obj: str, operation: str, batch: list[WriteItem]) -> list[Any]:
            seen.extend(batch)
            return []

    fields = {"hs_task_subject": "Hot lead", "__key": "hubspot:task:k"}
    items = [OutboxItem(1, "hubspot", "tasks", "create", None, 7, fields, "k", 1),
             OutboxItem(2, "hubspot", "tasks", "create", None, 8, fields, "j", 1, "TIMEOUT")]
    push._write(Capture(), "tasks", "create", items)  # type: ignore[arg-type]
    assert [i.never_sent for i in seen] == [True, False]


def test_engagement_streams_read_signals_only_in_the_sandbox(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=120)
    conn = hs_connector(running)
    start = running.ctx.clock.now()
    for kind in ("emails", "meetings", "tasks"):
        records = [r for page in conn.read(kind, None, cycle_start=start)
                   for r in page.records]
        store = running.ctx.hs.store(kind)
        prop, _ = VALUES[kind]
        signals = {str(r.id) for r in store.records.values() if not r.archived
                   and streams.engagement_kind(kind, {**r.properties})}
        assert {str(a.id).split(":")[0] for a in records} == signals, kind
        searches = conn.calls.by_operation().get(f"search_{kind}", 0)
        assert searches == max(1, -(-len(signals) // 200)), (kind, prop)
