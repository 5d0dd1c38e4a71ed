"""The mapping's compiled paths (names looked up once per object, each record read once) give
what the plain paths give, value for value and source for source, on messy records: blanks,
whitespace, aliases, NaN, numbers beyond any field, ties of modstamp, deleted records,
several records in one system."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncagent.engine import Rules, load_rules
from syncagent.engine.mapping import map_person, record_problems, remote_values
from tests.engine.conftest import SHIPPED
from tests.pipeline import plain_paths as plain

RULES: Rules = load_rules(SHIPPED)
FIELDS = RULES.compiled.fields
OBJECTS = [("salesforce", "Lead"), ("salesforce", "Contact"), ("hubspot", "contacts")]
BASE = datetime(2026, 11, 1, tzinfo=UTC)
VALUES = [None, "", "   ", " x ", "US", "united states", "UK", "Deutschland", 12, 0, -3,
          "12,000", "51-200", "$1.5M", 1.5, float("nan"), float("inf"), "1e40", 10 ** 30,
          "9" * 80, True, "true", "no", "+15551234567", "(555) 010-9999", "+44 20 7946 0958",
          "2026-11-20T10:00:00.000+0000", 1764000000000, "MiXed@Example.COM ", "mailto:a@b.c",
          "https://www.example.com/", "Technology", "Finance", "Lead", "MQL", "subscriber",
          "marketingqualifiedlead", "Hot", "A", "\u00e9t\u00e9",
          # reads as blank text (a URL of nothing but "www." and a slash), numbers at and just
          # beyond the limit a field can hold, NUL
          "www. /", "http:// ", 10 ** 18, -(10 ** 18) - 1, 1e18, -1e19, float("-inf"), "\x00"]


@dataclass(frozen=True)
class Record:
    system: str
    object: str
    fields: dict[str, Any]
    modstamp: datetime
    deleted: bool


def _names(system: str, object_name: str) -> list[str]:
    return sorted({name for spec in FIELDS
                   if (name := spec.remote_name(system, object_name)) is not None})


@st.composite
def records(draw: st.DrawFn) -> list[Record]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        system, object_name = draw(st.sampled_from(OBJECTS))
        names = draw(st.lists(st.sampled_from(_names(system, object_name)), max_size=12))
        fields = {name: draw(st.sampled_from(VALUES)) for name in names}
        # few distinct modstamps: ties between systems and within one are common
        stamp = BASE + timedelta(hours=draw(st.integers(0, 2)))
        out.append(Record(system, object_name, fields, stamp, draw(st.booleans())))
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN included (NaN reads as blank, but a NaN kept must match a NaN)."""
    return repr(a) == repr(b)


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_compiled_mapping_reads_what_the_plain_mapping_reads(recs: list[Record]) -> None:
    fast, slow = map_person(recs, FIELDS), plain.map_person(recs, FIELDS)
    assert _same(fast.values, slow.values)
    assert fast.sources == slow.sources
    for record in recs:
        assert record_problems(record, FIELDS) == plain.record_problems(record, FIELDS)
    for system, object_name in OBJECTS:
        held = next((r.fields for r in recs if (r.system, r.object) == (system, object_name)),
                    None)
        fast_misses: list[Any] = []
        slow_misses: list[Any] = []
        assert _same(remote_values(fast.values, FIELDS, system, object_name, held=held,
                                   misses=fast_misses),
                     plain.remote_values(slow.values, FIELDS, system, object_name, held=held,
                                         misses=slow_misses))
        assert _same(fast_misses, slow_misses)


def test_a_reloaded_rule_set_gets_its_own_compiled_names(mappings_copy: Any) -> None:
    """The compiled names belong to one rule set: another set (a reload with a field renamed)
    is read by its own names, not the first set's."""
    lead = Record("salesforce", "Lead", {"Title": "VP Sales", "Job_Title__c": "CFO"}, BASE,
                  False)
    assert map_person([lead], FIELDS).values["title"] == "VP Sales"
    fields_yaml = mappings_copy / "fields.yaml"
    fields_yaml.write_text(fields_yaml.read_text().replace("{lead: Title, contact: Title}",
                                                           "{lead: Job_Title__c, contact: Title}"))
    other = load_rules(mappings_copy).compiled.fields
    assert map_person([lead], other).values["title"] == "CFO"
    assert map_person([lead], FIELDS).values["title"] == "VP Sales"


def test_remembered_texts_stay_bounded_and_read_as_a_fresh_read() -> None:
    """Texts read once are remembered per field and object, never more than a bound: a
    million unique e-mails cannot grow it."""
    from syncagent.engine import mapping, reading

    readers = mapping.plan_of(FIELDS).readers("salesforce", "Lead")
    email = next(r for r in readers if r.kind == "email")
    for n in range(reading._MEMO_SIZE * 2 + 7):
        assert email.read(f" P{n}@Example.com ") == f"p{n}@example.com"
        assert len(email.memo) <= reading._MEMO_SIZE
    country = next(r for r in readers if r.kind == "country")
    assert country.read("Deutschland") == country.read("Deutschland") == country.convert(
        "Deutschland")


@pytest.mark.parametrize("blank_text", ["www. /", "https://www. ", "   ", "", None])
def test_a_value_reading_as_blank_text_is_blank_in_every_merge(blank_text: Any) -> None:
    """A URL of nothing but "www." and a slash reads as " ": blank, whether the person has one
    record (its value is None, not the text), a newer blank record over an older filled one
    in one system (the older one's value), or the preferred system's blank over another's
    value (the other's)."""
    lead = Record("salesforce", "Lead", {"Website": blank_text}, BASE + timedelta(hours=1),
                  False)
    older = Record("salesforce", "Lead", {"Website": "acme.com"}, BASE, False)
    contact = Record("hubspot", "contacts", {"website": "https://globex.net/"}, BASE, False)
    for recs, website, source in (([lead], None, "salesforce"),
                                  ([lead, older], "acme.com", "salesforce"),
                                  ([lead, contact], "globex.net", "hubspot")):
        fast, slow = map_person(recs, FIELDS), plain.map_person(recs, FIELDS)
        assert fast.values["website"] == slow.values["website"] == website
        assert fast.sources["website"] == slow.sources["website"] == source
