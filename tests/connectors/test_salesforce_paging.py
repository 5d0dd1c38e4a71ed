"""Salesforce query pages packed across streams, five to a Composite call (`responses`).

Worst inputs first: one stream's page refused among good ones (passing, then for good), a
session error inside one part, answers out of order, a dead query locator; then the packing
reaching max(ceil(pages / 5), the longest stream).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.streams import STREAMS
from syncagent.errors import AuthError, FatalError
from tests.connectors.test_salesforce_unit import DATA, NOW, _connector, _row, _soap_login

MORE = "/services/data/v59.0/query/01g"
#: what a stream's subrequest answers instead of its page: (stream, page number) -> answer
Refusal = dict[tuple[str, int], list[tuple[int, Any]]]


class Org:
    """Streams of ``pages[name]`` pages each, two rows a page, served inside Composite calls
    the way Salesforce pages: a first query, then ``nextRecordsUrl`` GETs."""

    def __init__(self, pages: dict[str, int], refusals: Refusal | None = None,
                 reverse: bool = False) -> None:
        self.pages = pages
        self.refusals = refusals or {}
        self.reverse = reverse
        self.calls: list[list[dict[str, Any]]] = []

    def page(self, obj: str, n: int) -> dict[str, Any]:
        total = self.pages[obj]
        rows = [_row(obj, f"{obj[:3]}{n:06d}{k}", NOW - timedelta(days=2, seconds=-n))
                for k in range(2)]
        body: dict[str, Any] = {"totalSize": 2 * total, "done": n + 1 >= total,
                                "records": rows}
        if n + 1 < total:
            body["nextRecordsUrl"] = f"{MORE}-{obj}-{n + 1}"
        return body

    def answer(self, sub: dict[str, Any]) -> dict[str, Any]:
        url = sub["url"]
        if url.startswith(MORE):
            _prefix, obj, n = url.rsplit("-", 2)
            where = (obj, int(n))
        else:
            soql = parse_qs(urlparse(url).query).get("q", [""])[0]
            where = (soql.split(" FROM ")[1].split(" ")[0], 0)
        refused = self.refusals.get(where)
        status, body = refused.pop(0) if refused else (200, self.page(*where))
        return {"referenceId": sub["referenceId"], "httpStatusCode": status,
                "httpHeaders": {}, "body": body}

    def reply(self, request: Any) -> tuple[int, dict[str, str], str]:
        subs = json.loads(request.body)["compositeRequest"]
        self.calls.append(subs)
        out = [self.answer(sub) for sub in subs]
        return 200, {}, json.dumps({"compositeResponse": out[::-1] if self.reverse else out})


def _read(org: Org, conn: SalesforceConnector | None = None) -> tuple[list[Any], Any]:
    conn = conn or _connector()
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.add_callback(responses.POST, f"{DATA}/composite", callback=org.reply)
        pages = list(conn.read_many({name: None for name in org.pages}, cycle_start=NOW))
    return pages, conn


def _ids(pages: list[Any], stream: str) -> list[str]:
    return [r.id for p in pages if p.stream == stream for r in p.records]


def _queries(subs: list[dict[str, Any]]) -> int:
    return sum(1 for sub in subs if "/query" in sub["url"])


def test_a_page_refused_for_a_passing_reason_is_asked_again_in_the_next_call() -> None:
    busy = [(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}])]
    org = Org({"Lead": 3, "Contact": 3}, refusals={("Lead", 1): list(busy)})
    pages, conn = _read(org)
    assert _ids(pages, "Lead") == [f"Lea{n:06d}{k}" for n in range(3) for k in range(2)]
    assert _ids(pages, "Contact") == [f"Con{n:06d}{k}" for n in range(3) for k in range(2)]
    assert [p.done for p in pages if p.stream == "Lead"] == [False, False, True]
    # the refused page rode in the Contact's second call and went again in the third
    assert conn.calls.by_operation() == {"login": 1, "composite": 4}


def test_a_page_refused_for_good_raises_after_the_pages_before_it() -> None:
    org = Org({"Lead": 3, "Contact": 2}, refusals={("Lead", 1): [
        (400, [{"errorCode": "MALFORMED_QUERY", "message": "unexpected token"}])]})
    conn = _connector()
    seen: list[Any] = []
    with responses.RequestsMock() as rsps, pytest.raises(FatalError) as caught:
        _soap_login(rsps)
        rsps.add_callback(responses.POST, f"{DATA}/composite", callback=org.reply)
        for page in conn.read_many({"Lead": None, "Contact": None}, cycle_start=NOW):
            seen.append(page)
    assert caught.value.fields["code"] == "MALFORMED_QUERY"
    assert [(p.stream, p.done) for p in seen] == [("Lead", False), ("Contact", False)]


EXPIRED = (401, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}])


def test_a_session_error_inside_one_part_relogs_in_once_then_fails_that_stream() -> None:
    org = Org({"Lead": 2, "Contact": 2}, refusals={("Contact", 1): [EXPIRED, EXPIRED]})
    with pytest.raises(AuthError):
        _read(org)
    org = Org({"Lead": 3, "Contact": 2}, refusals={("Contact", 1): [EXPIRED]})
    conn = _connector()
    with responses.RequestsMock() as rsps:
        logins = _soap_login(rsps)
        rsps.add_callback(responses.POST, f"{DATA}/composite", callback=org.reply)
        pages = list(conn.read_many({"Lead": None, "Contact": None}, cycle_start=NOW))
    assert logins == [2]
    assert _ids(pages, "Contact") == [f"Con{n:06d}{k}" for n in range(2) for k in range(2)]


def test_answers_out_of_order_are_matched_by_reference() -> None:
    org = Org({"Lead": 2, "Contact": 3, "Account": 1}, reverse=True)
    pages, _conn = _read(org)
    assert _ids(pages, "Contact") == [f"Con{n:06d}{k}" for n in range(3) for k in range(2)]
    assert _ids(pages, "Account") == ["Acc0000000", "Acc0000001"]


def test_a_dead_query_locator_queries_again_from_the_last_page() -> None:
    dead = [(404, [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid locator"}])]
    org = Org({"Lead": 3}, refusals={("Lead", 1): list(dead)})
    pages, _conn = _read(org)
    again = org.calls[2][0]["url"]
    assert "/queryAll/?q=" in again and "SystemModstamp%20%3E%3D" in again
    # the re-query starts over (two rows a page): the window's keys drop what was emitted
    assert Counter(_ids(pages, "Lead")) == Counter(f"Lea{n:06d}{k}" for n in range(3)
                                                   for k in range(2))


def test_pages_of_every_stream_fill_five_slots_and_reach_the_floor() -> None:
    sizes = {"Lead": 3, "Contact": 3, "Task": 3, "Event": 3, "CampaignMember": 3,
             "Account": 3, "User": 2, "Campaign": 1}
    org = Org(dict(sizes))
    pages, conn = _read(org)
    floor = max(math.ceil(sum(sizes.values()) / 5), max(sizes.values()))
    assert conn.calls.by_operation() == {"login": 1, "composite": floor}
    assert all(_queries(subs) <= 5 and len(subs) <= 25 for subs in org.calls)
    for spec in STREAMS:
        assert [p.done for p in pages if p.stream == spec.name] == \
            [False] * (sizes[spec.name] - 1) + [True]
        if spec.kind == "records":
            assert len(set(_ids(pages, spec.name))) == 2 * sizes[spec.name]


def test_records_fetched_by_id_go_five_queries_a_call_and_a_refused_one_alone() -> None:
    conn = _connector()
    ids = [f"00Q{n:012d}" for n in range(1000)]

    def rows_of(soql: str) -> list[dict[str, Any]]:
        return [_row("Lead", rid, NOW) for rid in ids if f"'{rid}'" in soql]

    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        out = []
        for sub in json.loads(request.body)["compositeRequest"]:
            soql = parse_qs(urlparse(sub["url"]).query)["q"][0]
            if f"'{ids[600]}'" in soql:      # the fourth chunk: a passing refusal
                out.append({"referenceId": sub["referenceId"], "httpStatusCode": 503,
                            "body": [{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}]})
                continue
            out.append({"referenceId": sub["referenceId"], "httpStatusCode": 200, "body": {
                "totalSize": 200, "done": True, "records": rows_of(soql)}})
        return 200, {}, json.dumps({"compositeResponse": out[::-1]})

    def alone(request: Any) -> tuple[int, dict[str, str], str]:
        soql = parse_qs(urlparse(request.url).query)["q"][0]
        return 200, {}, json.dumps({"totalSize": 200, "done": True, "records": rows_of(soql)})

    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.add_callback(responses.POST, f"{DATA}/composite", callback=reply)
        rsps.add_callback(responses.GET, f"{DATA}/query/", callback=alone)
        records = conn.fetch("Lead", ids)
    assert sorted(r.id for r in records) == ids
    assert conn.calls.by_operation() == {"login": 1, "composite": 1, "query": 1}
