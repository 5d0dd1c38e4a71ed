"""Seeding for bench/scale.py: a state DB as a backfill of a large org leaves it, written
directly with SQLAlchemy Core in batches (no API, no pipeline).

Per person: a Salesforce Lead (four in five) or Contact, a HubSpot contact for six in ten
(linked by the cross id HubSpot carries), 0 to 8 activities (4 on average) of both systems,
and an e-mail at one of the org's accounts for seven in ten. The org has 200 users (with a
HubSpot owner each) and one account per 20 persons. Field names and values are the shapes the
sandbox's streams store, so the engine and planning do their real work on them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from state import models as m
from state.common import table_of
from state.store import StateStore

BATCH = 5_000
USERS = 200
PERSONS_PER_ACCOUNT = 20
INDUSTRIES = ("Technology", "Finance", "Healthcare", "Manufacturing", "Retail", "Education",
              "Media", "Consulting")
TITLES = ("VP Sales", "Marketing Operations Director", "Sales Manager", "RevOps Manager",
          "Director of Demand Gen", "Software Engineer", "CFO", "Marketing Manager")
COUNTRIES = (("US", "MA", "Cambridge"), ("US", "IL", "Chicago"), ("CA", "ON", "Ottawa"),
             ("GB", None, "London"), ("DE", None, "Berlin"), ("IN", None, "Pune"))
STATUSES = ("Open - Not Contacted", "Open - Not Contacted", "Working - Contacted", "Accepted")
PAGES = ("product", "pricing", "demo-request", "blog/pipeline-hygiene", "careers", "docs/api")
HS_KINDS = ("page_view", "page_view", "email_open", "email_click", "form_submission",
            "webinar_registered", "webinar_attended", "call_connected")
SF_KINDS = ("call_attempted", "call_connected", "campaign_response", "meeting_completed")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _user_id(n: int) -> str:
    return f"0058c{n:010d}AAA"


def _account_domain(n: int) -> str:
    return f"account{n}.example.com"


def seed(store: StateStore, persons: int, now: datetime) -> dict[str, int]:
    """Write users, owners, accounts, persons, links, mirror rows and activities; returns
    the rows written per table."""
    accounts = max(1, persons // PERSONS_PER_ACCOUNT)
    counts = {"persons": 0, "mirror": 0, "person_links": 0, "activities": 0}
    _insert(store, m.MirrorRecord, _org(accounts, now))
    for people, links, records, acts in _person_batches(persons, accounts, now):
        _insert(store, m.Person, people)
        _insert(store, m.PersonLink, links)
        _insert(store, m.MirrorRecord, records)
        _insert(store, m.Activity, acts)
        counts["persons"] += len(people)
        counts["person_links"] += len(links)
        counts["mirror"] += len(records)
        counts["activities"] += len(acts)
    counts["mirror"] += USERS * 2 + accounts
    return counts


def _insert(store: StateStore, model: type[m.Base], rows: list[dict[str, Any]]) -> None:
    table = table_of(model)
    with store.sessions.write() as session:
        for start in range(0, len(rows), BATCH):
            session.execute(insert(table), rows[start:start + BATCH])


def _mirror(system: str, obj: str, rid: str, fields: dict[str, Any], modstamp: datetime,
            email: str | None = None) -> dict[str, Any]:
    return {"system": system, "object": obj, "remote_id": rid, "fields": fields,
            "modstamp": modstamp, "deleted": False, "last_seen_at": modstamp,
            "agent_written": {}, "email_key": email}


def _org(accounts: int, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for n in range(USERS):
        email = f"rep{n}@vendor.example.com"
        rows.append(_mirror("salesforce", "User", _user_id(n), {
            "Id": _user_id(n), "Email": email, "Name": f"Rep {n}", "IsActive": n % 50 != 49,
            "Out_Of_Office__c": n % 40 == 7, "Territory__c": ("NA", "EMEA", "APAC")[n % 3],
            "ManagerId": _user_id(n % 10), "UserType": "Standard"}, now))
        rows.append(_mirror("hubspot", "owners", str(70_000_000 + n), {
            "id": str(70_000_000 + n), "email": email, "archived": False}, now))
    for n in range(accounts):
        rows.append(_mirror("salesforce", "Account", f"0018c{n:010d}AAQ", {
            "Id": f"0018c{n:010d}AAQ", "Name": f"Account {n} Inc", "Website":
            f"https://www.{_account_domain(n)}", "OwnerId": _user_id(n % USERS),
            "Type": "Customer - Direct" if n % 9 == 0 else "Prospect",
            "Industry": INDUSTRIES[n % len(INDUSTRIES)], "NumberOfEmployees": 50 + n % 5000},
            now))
    return rows


Batch = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]],
              list[dict[str, Any]]]


def _person_batches(persons: int, accounts: int, now: datetime) -> Iterator[Batch]:
    rng = random.Random(7)
    for start in range(1, persons + 1, BATCH):
        people: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        acts: list[dict[str, Any]] = []
        for pid in range(start, min(persons + 1, start + BATCH)):
            _person(pid, accounts, now, rng, people, links, records, acts)
        yield people, links, records, acts


def _person(pid: int, accounts: int, now: datetime, rng: random.Random,
            people: list[dict[str, Any]], links: list[dict[str, Any]],
            records: list[dict[str, Any]], acts: list[dict[str, Any]]) -> None:
    domain = _account_domain(rng.randrange(accounts)) if rng.random() < 0.7 \
        else f"solo{pid}.example.org"
    email = f"p{pid}@{domain}"
    created = now - timedelta(days=rng.randrange(1, 400))
    country, state, city = rng.choice(COUNTRIES)
    common = {"FirstName": f"First{pid % 997}", "LastName": f"Last{pid}", "Email": email,
              "Title": rng.choice(TITLES), "Phone": f"+1555{pid:07d}", "LeadSource": "Web",
              "OwnerId": _user_id(rng.randrange(USERS)), "Lead_Grade__c": None,
              "Lead_Score__c": 0, "Lifecycle_Stage__c": None, "Nurture_Track__c": None,
              "CreatedDate": _stamp(created), "SystemModstamp": _stamp(created)}
    if pid % 5:
        sf_object, sf_id = "Lead", f"00Q8c{pid:010d}EAA"
        fields = {**common, "Id": sf_id, "Company": domain.split(".")[0].title(),
                  "Industry": rng.choice(INDUSTRIES), "NumberOfEmployees": rng.randrange(1, 9000),
                  "AnnualRevenue": float(rng.randrange(10**5, 10**9)), "Country": country,
                  "State": state, "City": city, "Status": rng.choice(STATUSES),
                  "IsConverted": False, "Website": domain}
    else:
        sf_object, sf_id = "Contact", f"0038c{pid:010d}AAA"
        fields = {**common, "Id": sf_id, "Department": "Marketing", "MailingCountry": country,
                  "MailingState": state, "MailingCity": city}
    people.append({"id": pid, "email_key": email, "created_at": created, "dirty": False,
                   "due_at": None})
    records.append(_mirror("salesforce", sf_object, sf_id, fields, created, email))
    links.append({"system": "salesforce", "object": sf_object, "remote_id": sf_id,
                  "person_id": pid, "linked_by": "new", "created_at": created})
    refs = [("salesforce", sf_object, sf_id)]
    if pid % 10 < 6:
        hs_id = str(pid)
        cross = "salesforceleadid" if sf_object == "Lead" else "salesforcecontactid"
        records.append(_mirror("hubspot", "contacts", hs_id, {
            "hs_object_id": hs_id, "email": email, "firstname": fields["FirstName"],
            "lastname": fields["LastName"], "jobtitle": fields["Title"], "country": country,
            "city": city, "lifecyclestage": "lead", cross: sf_id,
            "hs_analytics_num_page_views": str(rng.randrange(0, 20)),
            "createdate": _stamp(created), "lastmodifieddate": _stamp(created)},
            created, email))
        links.append({"system": "hubspot", "object": "contacts", "remote_id": hs_id,
                      "person_id": pid, "linked_by": "cross_id", "created_at": created})
        refs.append(("hubspot", "contacts", hs_id))
    for n in range(pid % 9):
        system, ref_object, ref_id = refs[n % len(refs)]
        acts.append(_activity(pid, n, system, ref_object, ref_id, now, rng))


def _activity(pid: int, n: int, system: str, ref_object: str, ref_id: str, now: datetime,
              rng: random.Random) -> dict[str, Any]:
    when = now - timedelta(hours=rng.randrange(1, 24 * 120))
    if system == "hubspot":
        kind = rng.choice(HS_KINDS)
        page = rng.choice(PAGES)
        details: dict[str, Any] = {"event_type": "e_visited_page",
                                   "url": f"https://www.example-vendor.com/{page}",
                                   "properties": {"hs_url": f"https://www.example-vendor.com/"
                                                            f"{page}", "hs_title": page}}
        if kind == "form_submission":
            details = {"event_type": "e_submitted_form", "form": "Contact sales",
                       "url": "https://www.example-vendor.com/contact-sales"}
    else:
        kind = rng.choice(SF_KINDS)
        details = {"fields": {"Subject": kind.replace("_", " ").title(), "Status": "Completed",
                              "OwnerId": _user_id(pid % USERS)}}
        if kind == "campaign_response":
            details = {"campaign": f"7018c{pid % 12:010d}AAA"}
    return {"system": system, "source_id": f"{pid}:{n}", "kind": kind, "occurred_at": when,
            "ref_object": ref_object, "ref_id": ref_id, "person_id": pid,
            "details": details}


def utc_now() -> datetime:
    return datetime.now(UTC)
