"""The sandbox's search pages come from a heap of the first after+limit matches; they must be
exactly the slice a full sort would give: ties by id, records without the value last."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from syncagent.sandbox.hubspot.portal import HsRecord
from syncagent.sandbox.hubspot.properties import PropertyDef
from syncagent.sandbox.hubspot.search import run_search

DEFS = {"score": PropertyDef(name="score", label="Score", type="number", field_type="number"),
        "city": PropertyDef(name="city", label="City", type="string", field_type="text")}


def _records(seed: int, n: int) -> list[HsRecord]:
    rng = random.Random(seed)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    ids = rng.sample(range(1, 10 * n), n)
    out = []
    for record_id in ids:
        props = {}
        if rng.random() < 0.7:          # few distinct values: many ties
            props["score"] = str(rng.randint(0, 5))
        if rng.random() < 0.7:
            props["city"] = rng.choice(["Oslo", "oslo", "Bergen", "Åre", "Zug"])
        out.append(HsRecord(id=record_id, properties=props, created_at=now, updated_at=now))
    return out


def _full_sort(records: list[HsRecord], name: str, descending: bool) -> list[HsRecord]:
    def value(r: HsRecord) -> object:
        raw = r.properties.get(name)
        if not raw:
            return None
        return float(raw) if name == "score" else raw.lower()
    present = sorted((r for r in records if value(r) is not None), key=lambda r: r.id)
    present.sort(key=value, reverse=descending)
    return present + sorted((r for r in records if value(r) is None), key=lambda r: r.id)


@pytest.mark.parametrize("seed", [3, 58, 911])
@pytest.mark.parametrize("name", ["score", "city"])
@pytest.mark.parametrize("descending", [False, True])
def test_every_page_equals_the_slice_of_a_full_sort(seed: int, name: str,
                                                    descending: bool) -> None:
    records = _records(seed, 700)
    expected = _full_sort(records, name, descending)
    direction = "DESCENDING" if descending else "ASCENDING"
    got: list[HsRecord] = []
    after: int | None = 0
    while after is not None:
        body = {"limit": 90, "after": str(after),
                "sorts": [{"propertyName": name, "direction": direction}]}
        total, page, after = run_search(records, DEFS, body)
        assert total == len(records)
        got += page
    assert [r.id for r in got] == [r.id for r in expected]


def test_without_a_sort_pages_go_by_id() -> None:
    records = _records(7, 450)
    _total, page, next_after = run_search(records, DEFS, {"limit": 200, "after": "400"})
    assert [r.id for r in page] == sorted(r.id for r in records)[400:]
    assert next_after is None
