"""The seed's hidden buyer model: leads dated from their first touch, some converted later,
more often those who went further in the funnel (the weights themselves are not read)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from syncagent.sandbox.common import SandboxContext
from syncagent.sandbox.hubspot.properties import parse_datetime_value
from tests.sandbox.test_seed import seeded


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> SandboxContext:
    return seeded(tmp_path_factory.mktemp("buyers"), 1200, 13)


def _day(value: object) -> date:
    return value.date() if isinstance(value, datetime) else value  # type: ignore[return-value]


def _first_touch(ctx: SandboxContext) -> dict[str, datetime]:
    first: dict[str, datetime] = {}
    for name, when_field in (("Task", "ActivityDate"), ("Event", "StartDateTime")):
        for row in ctx.sf.records(name):
            when = row.get(when_field)
            if isinstance(when, date) and not isinstance(when, datetime):
                when = datetime(when.year, when.month, when.day, tzinfo=UTC)
            who = row.get("WhoId")
            if who and when and (who not in first or when < first[who]):
                first[who] = when
    return first


OPPORTUNITY_DATE = "hs_lifecyclestage_opportunity_date"


def _opportunities(ctx: SandboxContext) -> dict[str, datetime | None]:
    """Lead id -> when its HubSpot contact became an opportunity."""
    return {r.properties["salesforceleadid"]: parse_datetime_value(r.properties[OPPORTUNITY_DATE])
            for r in ctx.hs.store("contacts").records.values()
            if r.properties.get(OPPORTUNITY_DATE) and r.properties.get("salesforceleadid")}


def test_a_lead_is_created_by_its_first_touch_and_converts_after_it(ctx: SandboxContext
                                                                    ) -> None:
    leads = {lead["Id"]: lead for lead in ctx.sf.records("Lead")}
    first = _first_touch(ctx)
    touched = [lead for lead in leads.values() if lead["Id"] in first]
    assert touched
    assert all(_day(lead["CreatedDate"]) <= _day(first[lead["Id"]]) for lead in touched)
    won = _opportunities(ctx)
    assert 0.01 * len(leads) < len(won) < 0.5 * len(leads)
    now = ctx.clock.now()
    for lead_id, when in won.items():
        assert leads[lead_id]["CreatedDate"] < when < now
        assert not leads[lead_id].get("IsConverted")   # the lead stays editable


def test_buyers_who_met_sales_convert_more_often(ctx: SandboxContext) -> None:
    met = {row["WhoId"] for row in ctx.sf.records("Event") if row.get("WhoId")}
    leads = list(ctx.sf.records("Lead"))

    won = _opportunities(ctx)

    def rate(group: list[dict[str, object]]) -> float:
        return sum(lead["Id"] in won for lead in group) / max(1, len(group))

    assert rate([x for x in leads if x["Id"] in met]) > \
        1.5 * rate([x for x in leads if x["Id"] not in met])


def test_the_same_seed_converts_the_same_leads(tmp_path: Path, ctx: SandboxContext) -> None:
    again = seeded(tmp_path, 1200, 13)
    assert set(_opportunities(again)) == set(_opportunities(ctx))   # the clock moved on
