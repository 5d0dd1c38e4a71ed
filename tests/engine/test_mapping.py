"""Field mappings: sync rules, translations, coercion and normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from syncagent.engine import Rules, desired_remote_fields, profile_from_records
from syncagent.engine.normalise import (
    normalise_country,
    normalise_email,
    to_date,
    to_integer,
    to_number,
)


@dataclass(frozen=True)
class Rec:
    system: str
    object: str
    fields: dict[str, Any]
    modstamp: datetime
    deleted: bool = False
    id: str = field(default="x")


T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 1, 2, tzinfo=UTC)


def test_prefer_salesforce_unless_blank_falls_back_to_hubspot(rules: Rules) -> None:
    profile = profile_from_records([
        Rec("salesforce", "Lead", {"Title": "", "Company": "Acme"}, T2),
        Rec("hubspot", "contacts", {"jobtitle": "CTO", "company": "Acme Inc"}, T1),
    ], rules)
    assert profile.values["title"] == "CTO"
    assert profile.sources["title"] == "hubspot"
    assert profile.values["company"] == "Acme"
    assert profile.sources["company"] == "salesforce"


def test_two_way_takes_the_latest_modstamp(rules: Rules) -> None:
    older_sf = [Rec("salesforce", "Lead", {"Phone": "+1 415 555 0100"}, T1),
                Rec("hubspot", "contacts", {"phone": "+1 415 555 0199"}, T2)]
    assert profile_from_records(older_sf, rules).values["phone"] == "+14155550199"
    newer_sf = [Rec("salesforce", "Lead", {"Phone": "+1 415 555 0100"}, T2),
                Rec("hubspot", "contacts", {"phone": "+1 415 555 0199"}, T1)]
    assert profile_from_records(newer_sf, rules).values["phone"] == "+14155550100"


@pytest.mark.parametrize(("raw", "expected"), [
    ("+44 20 7946 0958 ext. 12", "+442079460958;ext=12"),   # the extension is kept
    ("+44 (0)20 7946 0958 x7", "+442079460958;ext=7"),
    ("+1 (415) 555-0100", "+14155550100"),
    ("+49 30 901820", "+4930901820"),
    ("(415) 555-0100", "(415) 555-0100"),     # no country code: left as written
    ("call me maybe", "call me maybe"),
    ("+1 555", "+1 555"),                     # too short to be a number: untouched
    ("  ", None),
])
def test_phone_numbers_become_e164_or_stay_as_written(raw: str, expected: str | None) -> None:
    from syncagent.engine.normalise import normalise_phone

    assert normalise_phone(raw) == expected
    if expected is not None:
        assert normalise_phone(expected) == expected     # stable when read back


def test_always_salesforce_ignores_hubspot_even_when_salesforce_is_blank(rules: Rules) -> None:
    profile = profile_from_records([
        Rec("salesforce", "Lead", {"Status": None}, T1),
        Rec("hubspot", "contacts", {"hs_lead_status": "NEW"}, T2),
    ], rules)
    assert profile.values["lead_status"] is None
    assert profile.sources["lead_status"] == "salesforce"


def test_always_hubspot_wins_over_salesforce(rules: Rules) -> None:
    profile = profile_from_records([
        Rec("salesforce", "Lead", {"LeadSource": "Web"}, T2),
        Rec("hubspot", "contacts", {"hs_analytics_source": "PAID_SEARCH"}, T1),
    ], rules)
    assert profile.values["lead_source"] == "Advertisement"    # PAID_SEARCH, translated


@pytest.mark.parametrize("code", ["SOCIAL_MEDIA", "EMAIL_MARKETING", "PAID_SOCIAL", "OFFLINE",
                                  "REFERRALS", "DIRECT_TRAFFIC", "ORGANIC_SEARCH",
                                  "OTHER_CAMPAIGNS", "PAID_SEARCH"])
def test_no_hubspot_source_code_reaches_the_salesforce_lead_source(rules: Rules,
                                                                   code: str) -> None:
    """Every HubSpot analytics source lands as a value of Salesforce's Lead Source picklist."""
    profile = profile_from_records([Rec("hubspot", "contacts",
                                        {"hs_analytics_source": code}, T1)], rules)
    lead = desired_remote_fields(profile.values, rules, "salesforce", "Lead")
    assert lead["LeadSource"] in ("Web", "Advertisement", "Other")


def test_a_value_no_translation_knows_is_not_written_and_is_reported(rules: Rules) -> None:
    """A closed set: an unknown HubSpot code leaves the Salesforce field as it is."""
    from syncagent.engine.mapping import Miss, remote_values

    profile = profile_from_records([Rec("hubspot", "contacts",
                                        {"hs_analytics_source": "AI_REFERRALS",
                                         "industry": "Underwater Basket Weaving"}, T1)], rules)
    misses: list[Miss] = []
    lead = remote_values(profile.values, rules.compiled.fields, "salesforce", "Lead", misses=misses)
    assert "LeadSource" not in lead and "Industry" not in lead
    assert {(m.remote_field, m.value) for m in misses} == {
        ("LeadSource", "AI_REFERRALS"), ("Industry", "Underwater Basket Weaving")}
    assert all(m.line > 1 for m in misses)   # the fields.yaml line that maps it


def test_a_spelling_of_the_other_system_reads_as_its_canonical_value(rules: Rules) -> None:
    """HubSpot holding Salesforce's "Technology" grades as Software, so the value written to
    Salesforce and read back there grades the same: no second write."""
    profile = profile_from_records([Rec("hubspot", "contacts",
                                        {"industry": "Technology"}, T1)], rules)
    assert profile.values["industry"] == "Software"


def test_an_alias_the_record_already_holds_is_not_rewritten(rules: Rules) -> None:
    from syncagent.engine.mapping import remote_values

    profile = profile_from_records([Rec("salesforce", "Lead", {"Industry": "Technology"}, T1)],
                                   rules)
    held = {"industry": "INFORMATION_TECHNOLOGY_AND_SERVICES"}
    contact = remote_values(profile.values, rules.compiled.fields, "hubspot", "contacts", held=held)
    assert contact["industry"] == "INFORMATION_TECHNOLOGY_AND_SERVICES"


def test_picklist_values_translate_between_systems(rules: Rules) -> None:
    profile = profile_from_records([Rec("hubspot", "contacts",
                                        {"industry": "COMPUTER_SOFTWARE"}, T1)], rules)
    assert profile.values["industry"] == "Software"
    assert desired_remote_fields(profile.values, rules, "salesforce", "Lead")["Industry"] \
        == "Technology"


def test_contact_fields_are_read_by_their_contact_names(rules: Rules) -> None:
    profile = profile_from_records([Rec("salesforce", "Contact",
                                        {"MailingCountry": "Deutschland"}, T1)], rules)
    assert profile.values["country"] == "DE"


def test_deleted_records_are_ignored(rules: Rules) -> None:
    profile = profile_from_records([
        Rec("salesforce", "Lead", {"Title": "Old"}, T2, deleted=True),
        Rec("hubspot", "contacts", {"jobtitle": "New"}, T1),
    ], rules)
    assert profile.values["title"] == "New"


def test_remote_values_respect_sync_rules(rules: Rules) -> None:
    values = {"lead_status": "Accepted", "lead_source": "Web", "owner": "005X",
              "email": "a@b.com"}
    to_hubspot = desired_remote_fields(values, rules, "hubspot", "contacts")
    to_salesforce = desired_remote_fields(values, rules, "salesforce", "Lead")
    assert to_hubspot["hs_lead_status"] == "OPEN"          # always_salesforce flows to HubSpot
    assert "Status" not in to_salesforce                    # ...and never back
    assert to_salesforce["LeadSource"] == "Web"             # always_hubspot flows to Salesforce
    assert "hs_analytics_source" not in to_hubspot
    assert "OwnerId" not in to_salesforce and "hubspot_owner_id" not in to_hubspot  # dont_sync
    assert to_hubspot["email"] == to_salesforce["Email"] == "a@b.com"


@pytest.mark.parametrize(("raw", "expected"), [
    ("51-200", 51), ("1,000+", 1000), ("10 000", 10000), (250, 250), ("", None), ("n/a", None),
    ("201 \u2013 500", 201),
])
def test_employee_counts_coerce_including_ranges(raw: Any, expected: int | None) -> None:
    assert to_integer(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("$1.5M", 1_500_000.0), ("2,500,000", 2_500_000.0), ("750k", 750_000.0), (True, None),
])
def test_money_coerces(raw: Any, expected: float | None) -> None:
    assert to_number(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("United Kingdom", "GB"), ("usa", "US"), ("DEU", "DE"), ("fr", "FR"), ("Narnia", "Narnia"),
    (None, None),
])
def test_countries_normalise_to_iso_codes(raw: Any, expected: str | None) -> None:
    assert normalise_country(raw) == expected


def test_emails_normalise_and_dates_read_epoch_millis() -> None:
    assert normalise_email("  <Maria@Example.COM> ") == "maria@example.com"
    assert normalise_email("not an email") is None
    assert to_date(1_700_000_000_000) == "2023-11-14T22:13:20+00:00"
    assert to_date("2024-05-01T10:00:00Z") == "2024-05-01T10:00:00+00:00"
