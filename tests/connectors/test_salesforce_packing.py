"""Salesforce writes packed five collections to a Composite call, against `responses`.

Worst inputs first: one refused part among good ones, answers out of order, a session error
inside one part, an answer lost after the whole call landed; then the packing itself.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from connectors.base import WriteBatch, WriteItem
from connectors.retry import RetryPolicy
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.connector import SalesforceConnector
from state.outbox import NewOutboxRow
from state.store import StateStore
from syncagent.errors import AuthError, QuotaExhausted
from syncagent.pipeline.push import push
from tests.connectors.test_salesforce_unit import DATA, _settings, _soap_login

COMPOSITE = f"{DATA}/composite"
#: (referenceId, subrequest) -> (status, body) of that part; None: leave the part out
Part = Callable[[str, dict[str, Any]], tuple[int, Any] | None]


def _connector(attempts: int = 3) -> SalesforceConnector:
    policy = RetryPolicy(attempts=attempts, sleep=lambda s: None, rng=random.Random(0))
    return SalesforceConnector(SalesforceClient(_settings(), retry=policy),
                               lookback=timedelta(seconds=300))


def _ok(sub: dict[str, Any]) -> tuple[int, Any]:
    """Every record of a collection written (its id, or a made-up one for a create)."""
    return 200, [{"id": rec.get("Id") or f"new{n}", "success": True, "errors": [],
                  "created": "Id" not in rec} for n, rec in enumerate(sub["body"]["records"])]


def _serve(rsps: responses.RequestsMock, part: Part, seen: list[dict[str, Any]],
           *, reverse: bool = False) -> None:
    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        seen.append(body)
        out = []
        for sub in body["compositeRequest"]:
            answered = part(sub["referenceId"], sub)
            if answered is not None:
                status, payload = answered
                out.append({"referenceId": sub["referenceId"], "httpStatusCode": status,
                            "httpHeaders": {}, "body": payload})
        return 200, {}, json.dumps({"compositeResponse": out[::-1] if reverse else out})

    rsps.add_callback(responses.POST, COMPOSITE, callback=reply)


def _updates(obj: str, prefix: str, n: int) -> list[WriteItem]:
    return [WriteItem(fields={"Lead_Score__c": i}, id=f"{prefix}{i:012d}") for i in range(n)]


def _ids(sub: dict[str, Any]) -> list[str]:
    return [rec["Id"] for rec in sub["body"]["records"]]


def test_a_refused_part_fails_only_its_own_records() -> None:
    conn = _connector()
    batches = [WriteBatch("Lead", "update", _updates("Lead", "00Q", 200)),
               WriteBatch("Contact", "update", _updates("Contact", "003", 3)),
               WriteBatch("Lead", "update", _updates("Lead", "00Q9", 2))]

    def part(ref: str, sub: dict[str, Any]) -> tuple[int, Any]:
        if _ids(sub)[0].startswith("003"):
            return 503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}]
        if _ids(sub)[0].startswith("00Q9"):
            return 400, [{"errorCode": "INVALID_TYPE", "message": "sObject type 'X'"}]
        return _ok(sub)

    seen: list[dict[str, Any]] = []
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _serve(rsps, part, seen)
        answer = conn.write_packed(batches)
    assert answer.stop is None
    lead, contact, refused = answer.results
    assert all(r is not None and r.ok for r in lead)
    assert [(r.status, r.code) for r in contact if r] == [("retryable", "SERVER_UNAVAILABLE")] * 3
    assert [(r.status, r.code) for r in refused if r] == [("rejected", "INVALID_TYPE")] * 2
    assert conn.calls.by_operation() == {"login": 1, "composite_write": 1}
    assert all(sub["body"]["allOrNone"] is False for sub in seen[0]["compositeRequest"])


def test_answers_out_of_order_are_matched_by_reference_not_position() -> None:
    conn = _connector()
    batches = [WriteBatch("Lead", "update", _updates("Lead", "00Q", 2)),
               WriteBatch("Contact", "update", _updates("Contact", "003", 2))]

    def part(ref: str, sub: dict[str, Any]) -> tuple[int, Any]:
        if _ids(sub)[0].startswith("003"):
            return 200, [{"id": rid, "success": False, "errors": [
                {"statusCode": "ENTITY_IS_DELETED", "message": "deleted", "fields": []}]}
                for rid in _ids(sub)]
        return _ok(sub)

    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _serve(rsps, part, [], reverse=True)
        lead, contact = conn.write_packed(batches).results
    assert [r.status for r in lead if r] == ["ok", "ok"]
    assert [r.ref.id for r in lead if r] == ["00Q000000000000", "00Q000000000001"]
    assert [r.code for r in contact if r] == ["ENTITY_IS_DELETED"] * 2


def test_a_session_error_in_one_part_stops_the_push_and_keeps_what_landed(
        tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    rows = [NewOutboxRow("salesforce", "Lead", "update", {"Lead_Score__c": i},
                         f"lead:{i}", remote_id=f"00Q{i:012d}") for i in range(250)]
    rows += [NewOutboxRow("salesforce", "Contact", "update", {"Lead_Score__c": i},
                          f"contact:{i}", remote_id=f"003{i:012d}") for i in range(100)]
    store.outbox.enqueue(rows)

    def part(ref: str, sub: dict[str, Any]) -> tuple[int, Any]:
        if len(_ids(sub)) == 50:      # the second Lead collection
            return 401, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}]
        return _ok(sub)

    seen: list[dict[str, Any]] = []
    with responses.RequestsMock() as rsps:
        logins = _soap_login(rsps)
        _serve(rsps, part, seen)
        result = push({"salesforce": _connector()}, store, "agent-1", threading.Event())
    # the refused part goes once more after a re-login (as a plain call would), then stops
    assert [len(call["compositeRequest"]) for call in seen] == [3, 1] and logins == [2]
    assert isinstance(result.stop_errors["salesforce"], AuthError)
    assert result.written["salesforce"] == 300
    assert store.outbox.counts() == {"done": 300, "pending": 50}
    again = store.outbox.claim("agent-2", 100, system="salesforce")
    assert {item.attempts for item in again} == {1}, "a session error spends no attempt"


def test_a_part_refused_for_an_expired_session_lands_after_one_relogin() -> None:
    conn = _connector()
    batches = [WriteBatch("Lead", "update", _updates("Lead", "00Q", 2)),
               WriteBatch("Contact", "update", _updates("Contact", "003", 2))]
    refusals = [(401, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}])]

    def part(ref: str, sub: dict[str, Any]) -> tuple[int, Any]:
        if _ids(sub)[0].startswith("003") and refusals:
            return refusals.pop()           # the Contact part, the first time only
        return _ok(sub)

    seen: list[dict[str, Any]] = []
    with responses.RequestsMock() as rsps:
        logins = _soap_login(rsps)
        _serve(rsps, part, seen)
        answer = conn.write_packed(batches)
    assert answer.stop is None and logins == [2]
    assert [r.ok for batch in answer.results for r in batch if r] == [True] * 4
    assert [_ids(sub)[0][:3] for call in seen for sub in call["compositeRequest"]] == [
        "00Q", "003", "003"]


def test_an_allocation_error_in_one_part_is_a_stop_not_a_rejection() -> None:
    conn = _connector()
    batches = [WriteBatch("Lead", "update", _updates("Lead", "00Q", 2)),
               WriteBatch("Contact", "update", _updates("Contact", "003", 2))]

    def part(ref: str, sub: dict[str, Any]) -> tuple[int, Any]:
        if _ids(sub)[0].startswith("003"):
            return 403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED",
                          "message": "TotalRequests Limit exceeded."}]
        return _ok(sub)

    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _serve(rsps, part, [])
        answer = conn.write_packed(batches)
    assert isinstance(answer.stop, QuotaExhausted)
    assert [r.ok for r in answer.results[0] if r] == [True, True]
    assert answer.results[1] == [None, None]
    with responses.RequestsMock() as rsps, pytest.raises(QuotaExhausted):
        rsps.patch(f"{DATA}/composite/sobjects", status=403, json=[
            {"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}])
        conn.write("Contact", "update", _updates("Contact", "003", 2))   # one plain call


def test_a_part_missing_from_the_answer_leaves_its_records_retryable() -> None:
    conn = _connector()
    batches = [WriteBatch("Lead", "update", _updates("Lead", "00Q", 2)),
               WriteBatch("Contact", "update", _updates("Contact", "003", 2))]
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _serve(rsps, lambda ref, sub: None if _ids(sub)[0].startswith("003") else _ok(sub), [])
        lead, contact = conn.write_packed(batches).results
    assert [r.ok for r in lead if r] == [True, True]
    assert [(r.status, r.code) for r in contact if r] == [("retryable", "NO_ANSWER")] * 2


def test_an_answer_lost_after_the_call_landed_is_sent_again_and_finds_its_records() -> None:
    """The org applied the call, the answer never came: the retry upserts by key again, so
    nothing is created twice, and the records say they were found, not made."""
    conn = _connector()
    org: dict[str, str] = {}          # idempotency key -> id, what the org holds
    attempts = [0]

    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        attempts[0] += 1
        out = []
        for sub in json.loads(request.body)["compositeRequest"]:
            results = []
            for rec in sub["body"]["records"]:
                key = rec["Syncagent_Id__c"]
                created = key not in org
                org.setdefault(key, f"00Q{len(org):012d}")
                results.append({"id": org[key], "success": True, "created": created,
                                "errors": []})
            out.append({"referenceId": sub["referenceId"], "httpStatusCode": 200,
                        "httpHeaders": {}, "body": results})
        if attempts[0] == 1:
            raise requests.ConnectionError("connection reset after the org committed")
        return 200, {}, json.dumps({"compositeResponse": out})

    creates = [WriteItem(fields={"LastName": f"L{i}", "Company": "C"}, key=f"p{i}")
               for i in range(300)]
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.add_callback(responses.POST, COMPOSITE, callback=reply)
        [results] = conn.write_packed([WriteBatch("Lead", "create", creates)]).results
    assert attempts[0] == 2 and len(org) == 300
    assert all(r is not None and r.ok and r.created is False for r in results)
    assert [r.id for r in results if r] == [org[f"p{i}"] for i in range(300)]


def test_a_whole_call_that_keeps_failing_leaves_every_record_retryable() -> None:
    conn = _connector(attempts=2)
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        for _ in range(2):
            rsps.post(COMPOSITE, status=503,
                      json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}])
        answer = conn.write_packed([WriteBatch("Lead", "update", _updates("Lead", "00Q", 2)),
                                    WriteBatch("Contact", "update",
                                               _updates("Contact", "003", 1))])
    assert answer.stop is None
    assert [r.status for batch in answer.results for r in batch if r] == ["retryable"] * 3


def test_objects_and_operations_share_a_call_five_collections_at_most() -> None:
    conn = _connector()
    batches = [WriteBatch("Lead", "create",
                          [WriteItem(fields={"LastName": "x"}, key=f"p{i}") for i in range(150)]),
               WriteBatch("Lead", "update", _updates("Lead", "00Q", 450)),
               WriteBatch("Contact", "update", _updates("Contact", "003", 100)),
               WriteBatch("Task", "create",
                          [WriteItem(fields={"Subject": "s"}, key=f"t{i}") for i in range(20)])]
    seen: list[dict[str, Any]] = []

    def alone(request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps(_ok(request)[1])

    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _serve(rsps, lambda ref, sub: _ok(sub), seen)
        rsps.add_callback(responses.PATCH, f"{DATA}/composite/sobjects/Task/Idempotency_Key__c",
                          callback=lambda request: alone({"body": json.loads(request.body)}))
        answer = conn.write_packed(batches)
    parts = [(sub["method"], sub["url"].split("/v59.0/")[1], len(sub["body"]["records"]))
             for call in seen for sub in call["compositeRequest"]]
    assert parts == [("PATCH", "composite/sobjects/Lead/Syncagent_Id__c", 150),
                     ("PATCH", "composite/sobjects", 200), ("PATCH", "composite/sobjects", 200),
                     ("PATCH", "composite/sobjects", 50), ("PATCH", "composite/sobjects", 100)]
    assert [len(batch) for batch in answer.results] == [150, 450, 100, 20]
    assert all(r is not None and r.ok for batch in answer.results for r in batch)
    # the sixth collection, alone, goes as a plain collections call: one call either way
    assert conn.calls.by_operation() == {"login": 1, "composite_write": 1,
                                         "collections_patch": 1}


def test_push_packs_groups_of_different_objects_into_one_call(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    store.outbox.enqueue(
        [NewOutboxRow("salesforce", "Lead", "update", {"Lead_Score__c": 1}, f"l{i}",
                      remote_id=f"00Q{i:012d}") for i in range(380)]
        + [NewOutboxRow("salesforce", "Contact", "update", {"Lead_Score__c": 1}, f"c{i}",
                        remote_id=f"003{i:012d}") for i in range(30)]
        + [NewOutboxRow("salesforce", "Task", "create", {"Subject": "s", "__key": f"t{i}"},
                        f"t{i}") for i in range(5)])
    seen: list[dict[str, Any]] = []
    conn = _connector()
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _serve(rsps, lambda ref, sub: _ok(sub), seen)
        result = push({"salesforce": conn}, store, "agent-1", threading.Event())
    assert conn.calls.by_operation()["composite_write"] == 1
    assert [sub["url"].rsplit("/", 2)[-2:] for sub in seen[0]["compositeRequest"]] == [
        ["Task", "Idempotency_Key__c"], ["composite", "sobjects"], ["composite", "sobjects"],
        ["composite", "sobjects"]]                  # creates first, then the updates
    assert store.outbox.counts() == {"done": 415}
    assert result.written["salesforce"] == 410 and result.created["salesforce"] == 5


def _org_serving_creates(rsps: responses.RequestsMock, *, drop_creates: bool,
                         land: bool = True) -> dict[str, dict[str, Any]]:
    """An org that applies every collection of a Composite call (plain creates only when
    ``land``) but, with ``drop_creates``, leaves the plain creates' parts out of its answer;
    the read-back query answers the agent's own creates. Returns the org's records by id."""
    org: dict[str, dict[str, Any]] = {}

    def composite(request: Any) -> tuple[int, dict[str, str], str]:
        out = []
        for sub in json.loads(request.body)["compositeRequest"]:
            if sub["method"] == "POST" and not land:
                continue
            results = []
            for rec in sub["body"]["records"]:
                rid = rec.get("Id") or f"00T{len(org):012d}"
                org.setdefault(rid, {}).update(
                    {k: v for k, v in rec.items() if k != "attributes"}, Id=rid)
                results.append({"id": rid, "success": True, "errors": [],
                                "created": "Id" not in rec})
            if not (drop_creates and sub["method"] == "POST"):
                out.append({"referenceId": sub["referenceId"], "httpStatusCode": 200,
                            "httpHeaders": {}, "body": results})
        return 200, {}, json.dumps({"compositeResponse": out})

    def query(request: Any) -> tuple[int, dict[str, str], str]:
        soql = request.params["q"]
        assert "CreatedBy.Username = 'agent@acme.test'" in soql and "CreatedDate >=" in soql
        rows = [{"attributes": {"type": "Task"}, **rec} for rec in org.values()
                if rec["Id"].startswith("00T")]
        return 200, {}, json.dumps({"totalSize": len(rows), "done": True, "records": rows})

    rsps.add_callback(responses.POST, COMPOSITE, callback=composite)
    rsps.add_callback(responses.GET, f"{DATA}/query/", callback=query)
    return org


def _plain_tasks(n: int) -> list[WriteItem]:
    """Task creates with no key: nothing to upsert by, so a second send makes a copy."""
    return [WriteItem(fields={"Subject": f"Call {i}", "Priority": "High",
                              "ActivityDate": "2026-12-01"}) for i in range(n)]


def test_an_unanswered_plain_create_that_landed_is_read_back_never_sent_again() -> None:
    """Worst case: the org made the records, the part's answer is lost. The read-back finds
    each one (duplicates of the same values matched one to one), the results carry the ids
    the org gave, and no second create is sent."""
    conn = _connector()
    items = [*_plain_tasks(3), *_plain_tasks(1)]     # two creates send the same values
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        org = _org_serving_creates(rsps, drop_creates=True)
        answer = conn.write_packed([WriteBatch("Task", "create", items),
                                    WriteBatch("Lead", "update", _updates("Lead", "00Q", 2))])
        posts = [c for c in rsps.calls if c.request.method == "POST"
                 and c.request.url.endswith("/composite")]
    tasks, leads = answer.results
    assert len(posts) == 1 and len([rid for rid in org if rid.startswith("00T")]) == 4
    assert all(r is not None and r.ok and r.created for r in tasks)
    assert sorted(r.id for r in tasks if r) == sorted(rid for rid in org if rid.startswith("00T"))
    assert [r.ok for r in leads if r] == [True, True]


def test_a_plain_create_part_answered_with_a_5xx_is_read_back_too() -> None:
    """A server error inside the call does not say the records were not made."""
    conn = _connector()

    def part(ref: str, sub: dict[str, Any]) -> tuple[int, Any]:
        if sub["method"] == "POST":
            return 500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}]
        return _ok(sub)

    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _serve(rsps, part, [])
        rsps.get(f"{DATA}/query/", json={"totalSize": 0, "done": True, "records": []})
        tasks, leads = conn.write_packed([
            WriteBatch("Task", "create", _plain_tasks(2)),
            WriteBatch("Lead", "update", _updates("Lead", "00Q", 1))]).results
    assert [(r.status, r.code) for r in tasks if r] == [("retryable", "NOT_LANDED")] * 2
    assert [r.ok for r in leads if r] == [True]


def test_an_unanswered_plain_create_that_did_not_land_is_retryable() -> None:
    conn = _connector()
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        org = _org_serving_creates(rsps, drop_creates=True, land=False)
        tasks, _leads = conn.write_packed([
            WriteBatch("Task", "create", _plain_tasks(2)),
            WriteBatch("Lead", "update", _updates("Lead", "00Q", 1))]).results
    assert not [rid for rid in org if rid.startswith("00T")]
    assert [(r.status, r.code) for r in tasks if r] == [("retryable", "NOT_LANDED")] * 2


def test_a_plain_create_whose_read_back_fails_is_a_dead_letter_not_a_resend() -> None:
    """The outcome stays unknown: refused (kept as a dead letter for a person to check),
    never retried, since a retry could make a second record."""
    conn = _connector(attempts=1)
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.post(COMPOSITE, body=requests.ConnectionError("reset after the org committed"))
        rsps.get(f"{DATA}/query/", status=503,
                 json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}])
        tasks, leads = conn.write_packed([
            WriteBatch("Task", "create", _plain_tasks(2)),
            WriteBatch("Lead", "update", _updates("Lead", "00Q", 1))]).results
    assert [(r.status, r.code) for r in tasks if r] == [("rejected", "OUTCOME_UNKNOWN")] * 2
    assert [r.status for r in leads if r] == ["retryable"]      # an update may go again


def test_a_plain_create_call_is_not_retried_blindly_after_a_timeout() -> None:
    """The call is sent once (a retry policy of six attempts notwithstanding); the records
    the org made are found by the read-back."""
    conn = _connector(attempts=6)
    sent = [0]
    made: dict[str, dict[str, Any]] = {}

    def composite(request: Any) -> tuple[int, dict[str, str], str]:
        sent[0] += 1
        for sub in json.loads(request.body)["compositeRequest"]:
            for rec in sub["body"]["records"]:
                rid = f"00T{len(made):012d}"
                made[rid] = {**{k: v for k, v in rec.items() if k != "attributes"}, "Id": rid}
        raise requests.Timeout("read timed out after the org committed")

    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.add_callback(responses.POST, COMPOSITE, callback=composite)
        rsps.add_callback(responses.GET, f"{DATA}/query/", callback=lambda request: (
            200, {}, json.dumps({"totalSize": len(made), "done": True,
                                 "records": list(made.values())})))
        [tasks, leads] = conn.write_packed([
            WriteBatch("Task", "create", _plain_tasks(2)),
            WriteBatch("Lead", "update", _updates("Lead", "00Q", 1))]).results
    assert sent[0] == 1 and len(made) == 3
    assert [(r.status, r.created) for r in tasks if r] == [("ok", True)] * 2
    assert [r.status for r in leads if r] == ["retryable"]
