"""`ranges:`: a number written as the option of its range, an option read back as a number in
that range, so a range is compared with a range and never rewritten while it holds."""

from __future__ import annotations

from typing import Any

import pytest

from syncagent.engine import Rules, profile_from_records
from syncagent.engine.mapping import Miss, remote_values
from syncagent.engine.ranges import Range, RangeTable, compile_ranges
from syncagent.pipeline.records import same_value
from tests.engine.test_mapping import T1, T2, Rec

EMPLOYEES = [Range.model_validate(r) for r in (
    {"hubspot": "1-5", "from": 1, "below": 5}, {"hubspot": "5-25", "from": 5, "below": 25},
    {"hubspot": "25-50", "from": 25, "below": 50}, {"hubspot": "1000+", "from": 50})]


@pytest.fixture
def table() -> RangeTable:
    return compile_ranges(EMPLOYEES)["hubspot"]


@pytest.mark.parametrize(("value", "option"), [
    (1, "1-5"), (4, "1-5"), (4.99, "1-5"), (5, "5-25"), (24, "5-25"), (25, "25-50"),
    (10**12, "1000+"), ("12", "5-25"), ("1,200", "1000+"),
    (0, None), (-3, None), (0.5, None),               # below the first range
    ("a dozen", None), (None, None), ("", None), (float("nan"), None), (True, None),
])
def test_a_number_falls_in_one_range_and_anything_else_in_none(table: RangeTable, value: Any,
                                                               option: str | None) -> None:
    assert table.option_for(value) == option


def test_an_option_reads_back_as_a_number_of_its_own_range(table: RangeTable) -> None:
    for *_, option in table.ranges:
        assert table.option_for(table.read(option)) == option
    assert table.read(" 5-25 ") == 5 and isinstance(table.read("5-25"), int)
    assert table.read("10-20") == "10-20"          # not an option: read as it is
    assert table.read(12) == 12


def test_a_held_value_in_the_wanted_range_is_kept_any_other_is_replaced(
        table: RangeTable) -> None:
    assert table.write(12, held="5-25") == "5-25"
    assert table.write(12, held="12") == "12"          # not an option, but more precise
    assert table.write(12, held="10-20") == "10-20"    # a retired option in the same range
    assert table.write(30, held="5-25") == "25-50"
    assert table.write(30, held="lots") == "25-50"
    assert table.write(30, held=None) == "25-50"
    assert table.write(0, held="1-5") is None          # outside every range: write nothing


def test_salesforce_head_counts_are_written_to_hubspot_as_the_option_of_their_range(
        rules: Rules) -> None:
    profile = profile_from_records([Rec("salesforce", "Lead", {"NumberOfEmployees": 120}, T2)],
                                   rules)
    contact = remote_values(profile.values, rules.compiled.fields, "hubspot", "contacts")
    assert contact["numberofemployees"] == "100-500"
    lead = remote_values(profile.values, rules.compiled.fields, "salesforce", "Lead")
    assert lead["NumberOfEmployees"] == 120            # Salesforce keeps the number


def test_an_unchanged_range_is_not_rewritten_a_changed_one_is(rules: Rules) -> None:
    """The planner compares what it would write with what the record holds: the option
    HubSpot holds for the same range is equal, so no write; a new head count in another
    range is a change."""
    held = {"numberofemployees": "100-500"}
    for count, expected in ((120, "100-500"), (499, "100-500"), (500, "500-1000")):
        profile = profile_from_records([
            Rec("salesforce", "Lead", {"NumberOfEmployees": count}, T2),
            Rec("hubspot", "contacts", held, T1)], rules)
        wanted = remote_values(profile.values, rules.compiled.fields, "hubspot", "contacts",
                               held=held)["numberofemployees"]
        assert wanted == expected
        assert same_value(wanted, held["numberofemployees"]) == (expected == "100-500")


def test_a_hubspot_range_fills_a_blank_salesforce_head_count_with_its_lower_bound(
        rules: Rules) -> None:
    records = [Rec("salesforce", "Lead", {"NumberOfEmployees": None}, T2),
               Rec("hubspot", "contacts", {"numberofemployees": "25-50"}, T1)]
    profile = profile_from_records(records, rules)
    assert (profile.values["employees"], profile.sources["employees"]) == (25, "hubspot")
    assert remote_values(profile.values, rules.compiled.fields, "salesforce", "Lead")[
        "NumberOfEmployees"] == 25
    contact = remote_values(profile.values, rules.compiled.fields, "hubspot", "contacts",
                            held={"numberofemployees": "25-50"})
    assert contact["numberofemployees"] == "25-50"     # read back: the same option


def test_a_number_outside_every_range_is_not_written_and_is_reported(rules: Rules) -> None:
    profile = profile_from_records([Rec("salesforce", "Lead", {"NumberOfEmployees": 0}, T2)],
                                   rules)
    misses: list[Miss] = []
    contact = remote_values(profile.values, rules.compiled.fields, "hubspot", "contacts",
                            held={"numberofemployees": "1-5"}, misses=misses)
    assert "numberofemployees" not in contact          # HubSpot keeps "1-5"
    [miss] = misses
    assert (miss.field, miss.remote_field, miss.value) == ("employees", "numberofemployees", 0)
    assert miss.line > 1


def test_a_value_that_is_no_number_reads_as_blank_and_writes_nothing(rules: Rules) -> None:
    profile = profile_from_records([Rec("hubspot", "contacts",
                                        {"numberofemployees": "ask sales"}, T1)], rules)
    assert profile.values.get("employees") is None
    contact = remote_values(profile.values, rules.compiled.fields, "hubspot", "contacts",
                            held={"numberofemployees": "ask sales"})
    assert contact.get("numberofemployees") is None
