"""The search index keeps a sweep query's matches between pages (search_index.py); every page
must be exactly what the plain definition gives at that moment (run_search over every record
the index lag leaves visible, and a full filter and sort), while records are created,
updated (their modified date moves, in and out of the range and past the lag horizon),
archived and merged between pages."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncagent.sandbox.common import SandboxClock
from syncagent.sandbox.hubspot import journal, search_index
from syncagent.sandbox.hubspot.portal import HsRecord, HubSpotError, HubSpotPortal
from syncagent.sandbox.hubspot.search import run_search
from syncagent.sandbox.hubspot.search_index import search_store

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _ms(seconds: float) -> float:
    return (T0 + timedelta(seconds=seconds)).timestamp() * 1000


def _portal(rng: random.Random, n: int) -> HubSpotPortal:
    portal = HubSpotPortal(SandboxClock(T0))
    for i in range(n):
        _create(portal, rng, f"p{i}")
    return portal


def _create(portal: HubSpotPortal, rng: random.Random, name: str) -> None:
    when = T0 + timedelta(seconds=rng.randrange(0, 1000))
    portal.create("contacts", {"email": f"{name}@example.com", "firstname": name},
                  created_at=when, system=True)


def _change(portal: HubSpotPortal, rng: random.Random, step: int) -> None:
    """A few writes of every kind, as the agent and the simulation make between pages."""
    live = sorted(rid for rid, r in portal.store("contacts").records.items() if not r.archived)
    for _ in range(6):
        _create(portal, rng, f"new{step}-{rng.random()}")
    for rid in rng.sample(live, 12):   # some stay in range, some leave it, some pass the lag
        when = T0 + timedelta(seconds=rng.choice((150, 500, 790, 850, 950, 1200)))
        portal.update("contacts", rid, {"firstname": f"moved{step}"}, system=True, when=when)
    victims = rng.sample([rid for rid in live if portal.get("contacts", rid)], 3)
    portal.archive("contacts", victims[0])
    portal.merge(victims[1], victims[2])


def _naive(records: list[HsRecord], keep: Callable[[HsRecord], bool], sort: str | None,
           descending: bool) -> list[int]:
    """The full filter and sort, ties by id ascending."""
    kept = sorted((r for r in records if not r.archived and keep(r)), key=lambda r: r.id)
    if sort == "lastmodifieddate":
        kept.sort(key=lambda r: r.updated_ms, reverse=descending)
    elif descending:
        kept.reverse()
    return [r.id for r in kept]


def _body(sort: str | None, descending: bool, last_id: int | None) -> dict[str, Any]:
    groups = []
    for low, high in ((100, 400), (420, 800)):   # two ranges, as a sweep skipping its writes
        filters = [{"propertyName": "lastmodifieddate", "operator": "GTE",
                    "value": str(int(_ms(low)))},
                   {"propertyName": "lastmodifieddate", "operator": "LTE",
                    "value": str(int(_ms(high)))}]
        if last_id is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT",
                            "value": str(last_id)})
        groups.append({"filters": filters})
    body: dict[str, Any] = {"filterGroups": groups, "limit": 37}
    if sort is not None:
        body["sorts"] = [{"propertyName": sort,
                          "direction": "DESCENDING" if descending else "ASCENDING"}]
    return body


def _in_ranges(last_id: int | None) -> Callable[[HsRecord], bool]:
    def keep(r: HsRecord) -> bool:
        in_range = any(_ms(low) <= r.updated_ms <= _ms(high)
                       for low, high in ((100, 400), (420, 800)))
        return in_range and (last_id is None or r.id > last_id)
    return keep


def _visible(portal: HubSpotPortal, horizon: float | None) -> list[HsRecord]:
    records = list(portal.store("contacts").records.values())
    return [r for r in records if horizon is None or r.updated_ms <= horizon]


@pytest.mark.parametrize("seed", [5, 71])
@pytest.mark.parametrize(("sort", "descending"), [(None, False), ("hs_object_id", False),
                                                  ("hs_object_id", True),
                                                  ("lastmodifieddate", False),
                                                  ("lastmodifieddate", True)])
@pytest.mark.parametrize("horizon", [None, _ms(700)])   # the lag hides part of a range
@pytest.mark.parametrize("last_id", [None, 150])
def test_every_page_is_the_plain_definition_while_records_change(
        seed: int, sort: str | None, descending: bool, horizon: float | None,
        last_id: int | None) -> None:
    rng = random.Random(seed)
    portal = _portal(rng, 600)
    body, defs, after = _body(sort, descending, last_id), portal.property_defs("contacts"), 0
    pages = 0
    while True:
        body["after"] = str(after)
        total, page, next_after = search_store(portal.store("contacts"), defs, body, horizon)
        visible = _visible(portal, horizon)
        plain = run_search(visible, defs, body)
        assert (total, [r.id for r in page], next_after) == (
            plain[0], [r.id for r in plain[1]], plain[2])
        expected = _naive(visible, _in_ranges(last_id), sort, descending)
        assert total == len(expected)
        assert [r.id for r in page] == expected[after:after + 37]
        pages += 1
        if next_after is None:
            break
        after = next_after
        _change(portal, rng, pages)
    assert pages > 3


def test_a_page_filters_only_the_records_changed_since_the_last(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The second page of a kept query evaluates the filter on the changed records only, not
    the store (the old search filtered every record on every page)."""
    rng = random.Random(3)
    portal = _portal(rng, 500)
    calls = {"n": 0}
    compile_groups = search_index.compile_groups

    def counting(defs: Any, groups: Any) -> Callable[[HsRecord], bool]:
        predicate = compile_groups(defs, groups)

        def counted(record: HsRecord) -> bool:
            calls["n"] += 1
            return predicate(record)
        return counted
    monkeypatch.setattr(search_index, "compile_groups", counting)
    body, defs = _body("hs_object_id", False, None), portal.property_defs("contacts")
    store = portal.store("contacts")
    search_store(store, defs, body, None)
    assert calls["n"] == 500
    portal.update("contacts", 7, {"firstname": "x"}, system=True, when=T0)
    _create(portal, rng, "late")
    body["after"] = "37"
    search_store(store, defs, body, None)
    assert calls["n"] == 502


def test_a_cut_journal_and_a_horizon_gone_back_still_answer_the_definition(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the journal's bound the kept matches are rebuilt; a horizon earlier than one
    already asked (the lag grew) is answered by the plain search."""
    monkeypatch.setattr(journal, "SLACK", 0)
    rng = random.Random(11)
    portal = _portal(rng, 200)
    store, defs = portal.store("contacts"), portal.property_defs("contacts")
    body = _body(None, False, None)
    for step, horizon in enumerate((_ms(500), _ms(650), _ms(300), _ms(700), None)):
        _change(portal, rng, step)
        live = [rid for rid, r in store.records.items() if not r.archived]
        for rid in live[::2] * 5:        # past 2N changes: the journal is cut
            portal.update("contacts", rid, {}, system=True,
                          when=T0 + timedelta(seconds=rng.randrange(0, 1000)))
        got = search_store(store, defs, body, horizon)
        plain = run_search(_visible(portal, horizon), defs, body)
        assert (got[0], [r.id for r in got[1]], got[2]) == (
            plain[0], [r.id for r in plain[1]], plain[2])


@pytest.mark.parametrize("body", [
    {"limit": 500},
    {"after": "9900", "limit": 200},
    {"after": "x"},
    {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]},
    {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "GT"}]}]},
    {"sorts": [{"propertyName": "nope"}]},
    {"sorts": ["hs_object_id", "-lastmodifieddate"]},
    {"filterGroups": [{"filters": []}] * 6},
])
def test_refusals_are_the_plain_search_refusals(body: dict[str, Any]) -> None:
    portal = _portal(random.Random(2), 20)
    defs = portal.property_defs("contacts")
    with pytest.raises(HubSpotError) as plain:
        run_search(_visible(portal, None), defs, body)
    with pytest.raises(HubSpotError) as indexed:
        search_store(portal.store("contacts"), defs, body, None)
    assert (indexed.value.status, indexed.value.message) == (
        plain.value.status, plain.value.message)


@pytest.mark.parametrize("body", [
    {"query": "p1", "limit": 50},
    {"filterGroups": [{"filters": [{"propertyName": "firstname", "operator": "EQ",
                                    "value": "p3"}]}]},
    {"filterGroups": [{"filters": [{"propertyName": "hs_object_id",
                                    "operator": "CONTAINS_TOKEN", "value": "12"}]}]},
    {"sorts": ["-firstname"], "limit": 40, "after": "40"},
])
def test_other_queries_are_the_plain_search(body: dict[str, Any]) -> None:
    portal = _portal(random.Random(4), 150)
    defs = portal.property_defs("contacts")
    got = search_store(portal.store("contacts"), defs, body, _ms(700))
    plain = run_search(_visible(portal, _ms(700)), defs, body)
    assert (got[0], [r.id for r in got[1]], got[2]) == (
        plain[0], [r.id for r in plain[1]], plain[2])
