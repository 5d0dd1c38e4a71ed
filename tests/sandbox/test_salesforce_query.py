"""Salesforce sandbox: SOQL through the unmodified simple-salesforce (query, queryAll, paging,
filters, ordering, errors as Salesforce words them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import urlencode

import pytest
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from syncagent.sandbox.salesforce import sandbox_session
from syncagent.sandbox.server import RunningSandbox

SF_DATETIME = "%Y-%m-%dT%H:%M:%S.%f%z"


def login(running: RunningSandbox) -> Salesforce:
    info = running.info["salesforce"]
    return Salesforce(username=info["username"], password=info["password"],
                      security_token=info["security_token"],
                      session=sandbox_session(running.url, running.ca_cert))


@pytest.fixture
def fresh(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    sandbox.reset()
    yield sandbox
    sandbox.reset()


@pytest.fixture(scope="module")
def big(sandbox_factory_module: Callable[..., RunningSandbox]) -> RunningSandbox:
    return sandbox_factory_module(leads=2300)


@pytest.fixture(scope="module")
def sandbox_factory_module() -> Iterator[Callable[..., RunningSandbox]]:
    from syncagent.sandbox.server import start_sandbox

    started: list[RunningSandbox] = []

    def factory(leads: int) -> RunningSandbox:
        started.append(start_sandbox(leads=leads, seed=11))
        return started[-1]

    yield factory
    for running in started:
        running.stop()


def parse_sf(value: str) -> datetime:
    return datetime.strptime(value, SF_DATETIME)


def test_query_pages_past_2000_rows_with_next_records_url(big: RunningSandbox) -> None:
    sf = login(big)
    first = sf.query("SELECT Id, Email FROM Lead ORDER BY SystemModstamp, Id")
    total = first["totalSize"]
    assert total > 2000
    assert first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    everything = sf.query_all("SELECT Id, Email FROM Lead ORDER BY SystemModstamp, Id")
    ids = [r["Id"] for r in everything["records"]]
    assert len(ids) == total == len(set(ids))
    assert ids[:2000] == [r["Id"] for r in first["records"]]


def test_batch_size_option_sets_the_page_size(big: RunningSandbox) -> None:
    sf = login(big)
    page = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(page["records"]) == 500 and page["nextRecordsUrl"].endswith("-500")
    tiny = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(tiny["records"]) == 200      # Salesforce's minimum batch is 200


def test_records_have_attributes_parent_fields_and_salesforce_datetimes(
        sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    rec = sf.query("SELECT Id, Owner.Email, CreatedDate, NumberOfEmployees FROM Lead "
                   "WHERE OwnerId != null LIMIT 1")["records"][0]
    assert rec["attributes"] == {"type": "Lead",
                                 "url": f"/services/data/v59.0/sobjects/Lead/{rec['Id']}"}
    assert len(rec["Id"]) == 18 and rec["Id"].startswith("00Q")
    assert "@" in rec["Owner"]["Email"]
    assert rec["CreatedDate"].endswith(".000+0000")
    parse_sf(rec["CreatedDate"])
    contact = sf.query("SELECT Id, Account.Website FROM Contact WHERE AccountId != null "
                       "LIMIT 1")["records"][0]
    assert contact["Account"]["Website"].startswith("https://")


def test_datetime_literals_in_z_and_offset_forms_filter_the_same(
        sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    rows = sf.query_all("SELECT Id, CreatedDate FROM Lead ORDER BY CreatedDate")["records"]
    middle = parse_sf(rows[len(rows) // 2]["CreatedDate"]).replace(microsecond=0)
    z_form = sf.query(f"SELECT COUNT() FROM Lead WHERE CreatedDate >= "
                      f"{middle.strftime('%Y-%m-%dT%H:%M:%SZ')}")["totalSize"]
    offset_form = sf.query(format_soql("SELECT COUNT() FROM Lead WHERE CreatedDate >= {}",
                                       middle))["totalSize"]
    expected = sum(1 for r in rows if parse_sf(r["CreatedDate"]) >= middle)
    assert z_form == offset_form == expected


def test_where_with_and_or_not_in_like_and_null(sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    rows = sf.query_all("SELECT Id, Status, Email, Country, Disqualified_Reason__c "
                        "FROM Lead")["records"]

    def count(soql: str) -> int:
        return int(sf.query(soql)["totalSize"])

    assert count("SELECT COUNT() FROM Lead WHERE Status IN ('Unqualified', 'Qualified')") == \
        sum(1 for r in rows if r["Status"] in ("Unqualified", "Qualified"))
    assert count("SELECT COUNT() FROM Lead WHERE NOT Status = 'Unqualified'") == \
        sum(1 for r in rows if r["Status"] != "Unqualified")
    assert count("SELECT COUNT() FROM Lead WHERE Disqualified_Reason__c = null") == \
        sum(1 for r in rows if r["Disqualified_Reason__c"] is None)
    assert count("SELECT COUNT() FROM Lead WHERE Email LIKE '%.co.uk'") == \
        sum(1 for r in rows if r["Email"].endswith(".co.uk"))
    assert count("SELECT COUNT() FROM Lead WHERE (Status = 'Unqualified' OR Country = 'US') "
                 "AND Email != null") == sum(
        1 for r in rows if r["Status"] == "Unqualified" or r["Country"] == "US")


def test_order_by_several_fields_with_directions_and_nulls(sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    rows = sf.query_all("SELECT Id, State, Email FROM Lead "
                        "ORDER BY State DESC NULLS FIRST, Email ASC")["records"]
    states = [r["State"] for r in rows]
    nulls = states.count(None)
    assert all(s is None for s in states[:nulls])
    named = [(r["State"].lower(), r["Email"].lower()) for r in rows[nulls:]]
    assert [s for s, _ in named] == sorted((s for s, _ in named), reverse=True)
    for (state_a, email_a), (state_b, email_b) in pairwise(named):
        if state_a == state_b:
            assert email_a <= email_b


def test_limit_and_count(sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    assert len(sf.query("SELECT Id FROM Lead LIMIT 7")["records"]) == 7
    result = sf.query("SELECT COUNT() FROM Lead")
    assert result["records"] == [] and result["totalSize"] > 300


def test_unknown_column_is_invalid_field_worded_like_salesforce(
        sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, Foo FROM Lead")
    body: list[dict[str, Any]] = caught.value.content  # type: ignore[assignment]
    assert body[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Foo' on entity 'Lead'" in body[0]["message"]
    assert "ERROR at Row:1:Column:12" in body[0]["message"]


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY"),
    ("SELECT Id FROM Lead WHERE Status = 'A' AND Email = 'b' OR Country = 'c'",
     "MALFORMED_QUERY"),
    ("SELECT Id Lead", "MALFORMED_QUERY"),
    ("SELECT Id FROM Leed", "INVALID_TYPE"),
    ("SELECT Id FROM Lead WHERE CreatedDate > '2026-01-01T00:00:00Z'", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR"),
])
def test_bad_soql_is_a_400_with_the_salesforce_code(sandbox: RunningSandbox, soql: str,
                                                    code: str) -> None:
    sf = login(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.status == 400
    assert caught.value.content[0]["errorCode"] == code  # type: ignore[index]


def test_format_soql_escapes_round_trip_a_quote_and_a_backslash(fresh: RunningSandbox) -> None:
    email = "o'brien\\ops@example.com"
    with fresh.ctx.lock:
        [lead_id] = fresh.ctx.sf.insert("Lead", [{"LastName": "O'Brien", "Company": "Q",
                                                  "Email": email}])
    sf = login(fresh)
    found = sf.query(format_soql("SELECT Id, Email FROM Lead WHERE Email = {}", email))
    assert [r["Id"] for r in found["records"]] == [lead_id]
    assert found["records"][0]["Email"] == email
    like = sf.query(format_soql("SELECT Id FROM Lead WHERE Email LIKE '{:like}%'", "o'brien\\"))
    assert [r["Id"] for r in like["records"]] == [lead_id]


def test_query_all_returns_deleted_rows_and_query_does_not(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    lead = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]
    sf.Lead.delete(lead["Id"])
    soql = format_soql("SELECT Id, IsDeleted FROM Lead WHERE Id = {}", lead["Id"])
    assert sf.query(soql)["totalSize"] == 0
    rows = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(lead["Id"], True)]


def test_modstamp_keyset_paging_sees_every_row_once(sandbox: RunningSandbox) -> None:
    """The agent's incremental read: (SystemModstamp, Id) keyset with LIMIT."""
    sf = login(sandbox)
    total = sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    seen: list[str] = []
    stamp, last_id = datetime(2000, 1, 1, tzinfo=UTC), ""
    while True:
        page = sf.query(format_soql(
            "SELECT Id, SystemModstamp FROM Lead WHERE SystemModstamp > {stamp} OR "
            "(SystemModstamp = {stamp} AND Id > {last}) ORDER BY SystemModstamp, Id LIMIT 100",
            stamp=stamp, last=last_id or "00Q000000000000"))["records"]
        if not page:
            break
        seen += [r["Id"] for r in page]
        stamp = parse_sf(page[-1]["SystemModstamp"])
        last_id = page[-1]["Id"]
    assert len(seen) == len(set(seen)) == total


def test_date_literal_last_n_days(sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    rows = sf.query_all("SELECT CreatedDate FROM Lead")["records"]
    now = sandbox.ctx.clock.now()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
    expected = sum(1 for r in rows if parse_sf(r["CreatedDate"]) >= start)
    assert sf.query("SELECT COUNT() FROM Lead WHERE CreatedDate = LAST_N_DAYS:30"
                    )["totalSize"] == expected


def test_uri_over_16kb_is_a_414_in_a_url_and_in_a_composite_subrequest(
        sandbox: RunningSandbox) -> None:
    """A GET over 16,384 bytes is refused (documented); a Composite subrequest url that long is
    refused too, as its part (undocumented for subrequests: the harsher case is modelled, so
    the agent splits long queries instead of hiding them in a Composite body); a short one in
    the same call is answered."""
    sf = login(sandbox)
    [lead_id] = [r["Id"] for r in sf.query("SELECT Id FROM Lead LIMIT 1")["records"]]
    soql = format_soql("SELECT Id FROM Lead WHERE Id IN {}", [lead_id] * 900)
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query(soql)
    assert caught.value.status == 414
    short = format_soql("SELECT Id FROM Lead WHERE Id IN {}", [lead_id])
    out = sf.restful("composite", method="POST", json={"compositeRequest": [
        {"method": "GET", "referenceId": "long",
         "url": "/services/data/v59.0/query?" + urlencode({"q": soql})},
        {"method": "GET", "referenceId": "short",
         "url": "/services/data/v59.0/query?" + urlencode({"q": short})}]})
    long_part, short_part = out["compositeResponse"]
    assert long_part["httpStatusCode"] == 414
    assert long_part["body"][0]["errorCode"] == "URI_TOO_LONG"
    assert short_part["body"]["records"][0]["Id"] == lead_id


def test_system_modstamp_ranges_match_a_plain_filter(fresh: RunningSandbox) -> None:
    """The modstamp index answers strict and inclusive bounds exactly, incl. ties."""
    sf = login(fresh)
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 30")["records"]]
    for i, lead_id in enumerate(ids):
        if i % 10 == 0:
            fresh.ctx.clock.advance(3)
        sf.Lead.update(lead_id, {"Title": f"T{i}"})
    rows = sf.query_all("SELECT Id, SystemModstamp FROM Lead")["records"]
    stamps = sorted({parse_sf(r["SystemModstamp"]) for r in rows})
    pivot = stamps[-2]
    literal = pivot.strftime("%Y-%m-%dT%H:%M:%SZ")
    checks = {">": lambda s: s > pivot, ">=": lambda s: s >= pivot,
              "<": lambda s: s < pivot, "<=": lambda s: s <= pivot, "=": lambda s: s == pivot}
    for op, check in checks.items():
        got = sf.query_all(f"SELECT Id FROM Lead WHERE SystemModstamp {op} {literal} "
                           "ORDER BY SystemModstamp, Id")["records"]
        expected = {r["Id"] for r in rows if check(parse_sf(r["SystemModstamp"]))}
        assert {r["Id"] for r in got} == expected, op
        assert len(got) == len(expected)


def test_a_late_commit_carries_an_older_system_modstamp(fresh: RunningSandbox) -> None:
    """update(stamp_at=...) emulates a long transaction: a cursor at 'now' misses it, a
    lookback finds it."""
    sf = login(fresh)
    [lead_id] = [r["Id"] for r in sf.query("SELECT Id FROM Lead LIMIT 1")["records"]]
    fresh.ctx.clock.advance(60)
    cursor = fresh.ctx.clock.now().replace(microsecond=0)
    with fresh.ctx.lock:
        fresh.ctx.sf.update("Lead", lead_id, {"Title": "Late"},
                            stamp_at=cursor - timedelta(seconds=30))
    after_cursor = sf.query(format_soql("SELECT Id FROM Lead WHERE SystemModstamp >= {}",
                                        cursor))["records"]
    lookback = sf.query(format_soql("SELECT Id FROM Lead WHERE SystemModstamp >= {}",
                                    cursor - timedelta(minutes=1)))["records"]
    assert lead_id not in {r["Id"] for r in after_cursor}
    assert lead_id in {r["Id"] for r in lookback}


def test_versions_from_59_are_served_and_older_ones_are_not_found(
        sandbox: RunningSandbox) -> None:
    info = sandbox.info["salesforce"]
    session = sandbox_session(sandbox.url, sandbox.ca_cert)
    for version, ok in (("59.0", True), ("62.0", True), ("70.0", True), ("58.0", False)):
        sf = Salesforce(session_id=info["session_id"], instance_url=info["instance_url"],
                        session=session, version=version)
        if ok:
            page = sf.query("SELECT Id FROM Lead LIMIT 1")
            assert page["records"][0]["attributes"]["url"].startswith(
                f"/services/data/v{version}/")
        else:
            with pytest.raises(SalesforceResourceNotFound):
                sf.query("SELECT Id FROM Lead LIMIT 1")


def test_composite_carries_the_next_page_of_several_queries_five_at_most(
        sandbox: RunningSandbox) -> None:
    """queryMore GETs ride in a Composite call beside first queries, each paged on its own,
    one API call for all; a sixth query or queryMore is refused (API-FACTS: 25/5)."""
    sf = login(sandbox)
    headers = {"Sforce-Query-Options": "batchSize=200"}
    first = [sf.restful("query/", params={"q": f"SELECT Id FROM {obj} ORDER BY Id"},
                        headers=headers) for obj in ("Lead", "Lead", "Contact")]
    assert all(not page["done"] for page in first[:2])
    used = sf.api_usage["api-usage"].used
    subs = [{"method": "GET", "referenceId": f"more{n}", "url": page["nextRecordsUrl"]}
            for n, page in enumerate(first) if not page["done"]]
    subs += [{"method": "GET", "referenceId": "fresh", "httpHeaders": headers,
              "url": "/services/data/v59.0/query?" + urlencode({"q": "SELECT Id FROM User"})}]
    out = {a["referenceId"]: a for a in sf.restful(
        "composite", method="POST", json={"compositeRequest": subs})["compositeResponse"]}
    assert all(a["httpStatusCode"] == 200 for a in out.values())
    assert out["more0"]["body"]["records"] == out["more1"]["body"]["records"]
    assert out["more0"]["body"]["records"][0]["Id"] > first[0]["records"][-1]["Id"]
    sf.query("SELECT Id FROM Lead LIMIT 1")
    assert sf.api_usage["api-usage"].used == used + 2     # the Composite call, this query
    six = [{"method": "GET", "referenceId": f"m{n}", "url": first[0]["nextRecordsUrl"]}
           for n in range(6)]
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite", method="POST", json={"compositeRequest": six})
