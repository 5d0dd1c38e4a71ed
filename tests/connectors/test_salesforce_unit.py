"""Salesforce connector unit tests against `responses` (simple-salesforce speaks requests)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from connectors.base import Cursor, RemoteRecord, WriteItem
from connectors.cursor import fingerprint, record_key
from connectors.retry import RetryPolicy
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.connector import SalesforceConnector
from syncagent.errors import AuthError, BudgetExhausted, ConfigError, QuotaExhausted
from syncagent.settings import SalesforceSettings

INSTANCE = "https://acme.my.salesforce.com"
DATA = f"{INSTANCE}/services/data/v59.0"
SOAP_URL = "https://login.salesforce.com/services/Soap/u/59.0"
TOKEN_URL = "https://login.salesforce.com/services/oauth2/token"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

SOAP_OK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<loginResponse><result><serverUrl>https://acme.my.salesforce.com/services/Soap/u/59.0/00D</serverUrl>
<sessionId>SESSION{n}</sessionId></result></loginResponse></soapenv:Body></soapenv:Envelope>"""


def _settings(**kw: Any) -> SalesforceSettings:
    base: dict[str, Any] = {"auth": "password", "username": "agent@acme.test",
                            "password": SecretStr("pw"),
                            "security_token": SecretStr("tok")}
    base.update(kw)
    return SalesforceSettings(**base)


def _connector(settings: SalesforceSettings | None = None, *, attempts: int = 4,
               lookback: int = 300) -> SalesforceConnector:
    policy = RetryPolicy(attempts=attempts, sleep=lambda s: None, rng=random.Random(0))
    client = SalesforceClient(settings or _settings(), retry=policy)
    return SalesforceConnector(client, lookback=timedelta(seconds=lookback))


def _soap_login(rsps: responses.RequestsMock) -> list[int]:
    count = [0]

    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        count[0] += 1
        return 200, {}, SOAP_OK.format(n=count[0])

    rsps.add_callback(responses.POST, SOAP_URL, callback=reply)
    return count


def _row(obj: str, rid: str, stamp: datetime, **fields: Any) -> dict[str, Any]:
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {"attributes": {"type": obj}, "Id": rid, "IsDeleted": False, "SystemModstamp": text,
            "CreatedDate": text, **fields}


Handler = Callable[[str, str], dict[str, Any]]


def _composite(rsps: responses.RequestsMock, answer: Handler,
               seen: list[dict[str, Any]] | None = None,
               headers: dict[str, str] | None = None) -> None:
    """Composite endpoint: answer(referenceId, decoded SOQL or url) -> subrequest body."""

    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        if seen is not None:
            seen.append(body)
        out = []
        for sub in body["compositeRequest"]:
            url = sub["url"]
            query = parse_qs(urlparse(url).query).get("q", [""])[0]
            result = answer(sub["referenceId"], query or url)
            status = result.pop("__status", 200)
            out.append({"referenceId": sub["referenceId"], "httpStatusCode": status,
                        "httpHeaders": {}, "body": result.get("__body", result)})
        return 200, headers or {}, json.dumps({"compositeResponse": out})

    rsps.add_callback(responses.POST, f"{DATA}/composite", callback=reply)


def test_password_login_then_incremental_query_uses_ge_lookback_order_and_queryall() -> None:
    conn = _connector()
    cursor = Cursor(modstamp=NOW - timedelta(hours=1))
    seen: list[dict[str, Any]] = []
    with responses.RequestsMock() as rsps:
        logins = _soap_login(rsps)
        _composite(rsps, lambda ref, q: {"totalSize": 0, "done": True, "records": []}
                   if ref.endswith("_q") else {"deletedRecords": []}, seen)
        pages = list(conn.read("Lead", cursor, cycle_start=NOW))
    assert logins == [1]
    sub = seen[0]["compositeRequest"][0]
    assert "/queryAll/" in sub["url"]
    soql = unquote(urlparse(sub["url"]).query)[2:]
    assert "WHERE SystemModstamp >= 2026-03-01T10:55:00+00:00" in soql
    assert soql.endswith("ORDER BY SystemModstamp, Id")
    assert "Score_Reasons__c" not in soql     # long text would cut batches to 200 rows
    assert [p.done for p in pages] == [True]
    assert conn.calls.by_operation() == {"login": 1, "composite": 1}


def test_paging_follows_next_records_url_and_dedupes_boundary_rows() -> None:
    conn = _connector()
    t = NOW - timedelta(minutes=30)
    seen_row = _row("Lead", "00Q000000000001", t)           # already emitted last time
    content = {k: v for k, v in seen_row.items() if k != "attributes"}
    cursor = Cursor(modstamp=t, boundary_ids=frozenset({
        record_key("00Q000000000001", t, fingerprint(content))}))
    first = {"totalSize": 3, "done": False, "nextRecordsUrl": "/services/data/v59.0/query/01g-2000",
             "records": [seen_row, _row("Lead", "00Q000000000002", t)]}
    second = {"totalSize": 3, "done": True,
              "records": [_row("Lead", "00Q000000000003", t + timedelta(seconds=1))]}
    progress: list[int] = []
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _composite(rsps, lambda ref, q: first if ref == "Lead_q" else second
                   if q == "/services/data/v59.0/query/01g-2000" else {"deletedRecords": []})
        pages = list(conn.read("Lead", cursor, cycle_start=NOW,
                               progress=lambda p: progress.append(p.records)))
    ids = [r.id for p in pages for r in p.records]
    assert ids == ["00Q000000000002", "00Q000000000003"]
    assert progress == [1, 2]
    assert pages[0].cursor.modstamp == t                   # mid-read: the newest row seen
    assert pages[-1].cursor.modstamp == NOW                # complete: the cycle start
    assert conn.calls.by_operation() == {"login": 1, "composite": 2}   # the next page too


def test_deleted_and_merged_rows_become_delete_records() -> None:
    conn = _connector()
    t = NOW - timedelta(minutes=5)
    rows = {"totalSize": 1, "done": True, "records": [
        _row("Lead", "00Q00000000000A", t, IsDeleted=True, MasterRecordId="00Q00000000000B")]}
    log = {"deletedRecords": [{"id": "00Q00000000000C",
                               "deletedDate": "2026-03-01T11:58:00.000+0000"}],
           "earliestDateAvailable": "2026-02-20T00:00:00.000+0000"}
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _composite(rsps, lambda ref, q: rows if ref.endswith("_q") else log)
        pages = list(conn.read("Lead", Cursor(modstamp=t), cycle_start=NOW))
    records = {r.id: r for r in pages[0].records if isinstance(r, RemoteRecord)}
    assert records["00Q00000000000A"].deleted
    assert records["00Q00000000000A"].merged_into == "00Q00000000000B"
    assert records["00Q00000000000C"].deleted


def test_away_longer_than_the_delete_log_runs_a_full_id_reconcile_first() -> None:
    conn = _connector()
    old = NOW - timedelta(days=20)
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.get(f"{DATA}/query/", json={"totalSize": 2, "done": True, "records": [
            {"Id": "00Q000000000001"}, {"Id": "00Q000000000002"}]})
        _composite(rsps, lambda ref, q: {"totalSize": 0, "done": True, "records": []})
        pages = list(conn.read("Lead", Cursor(modstamp=old), cycle_start=NOW))
    ids = pages[0].reconcile_ids
    assert ids is not None and len(ids) == 2  # type: ignore[arg-type]
    assert "00Q000000000001" in ids and "00Q000000000002" in ids
    assert "00Q000000000003" not in ids
    assert pages[0].cursor == Cursor(modstamp=old)       # the reconcile page moves nothing
    assert pages[-1].done


def _quiet_or_changed(changed: set[str]) -> Handler:
    def answer(ref: str, q: str) -> dict[str, Any]:
        name, _, kind = ref.rpartition("_")
        if kind == "q":
            return {"totalSize": 0, "done": True, "records": []}
        if kind == "updated":
            return {"ids": ["001000000000001"] if name in changed else [],
                    "latestDateCovered": "2026-03-01T12:00:00.000+0000"}
        return {"deletedRecords": []}
    return answer


def test_a_quiet_cycle_of_eight_streams_is_one_composite_call() -> None:
    """Five streams are queried; the other three are change-checked in the same call."""
    conn = _connector()
    seen: list[dict[str, Any]] = []
    cursor = Cursor(modstamp=NOW - timedelta(minutes=1))
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _composite(rsps, _quiet_or_changed(set()), seen)
        pages = list(conn.read_many({n: cursor for n in conn.streams}, cycle_start=NOW))
    assert conn.calls.by_operation()["composite"] == 1
    subs = seen[0]["compositeRequest"]
    queries = [s["referenceId"][:-2] for s in subs if s["referenceId"].endswith("_q")]
    checks = [s["referenceId"][:-8] for s in subs if s["referenceId"].endswith("_updated")]
    assert queries == ["Lead", "Contact", "Task", "Event", "CampaignMember"]
    assert checks == ["Account", "User", "Campaign"]
    assert len(subs) <= 25
    assert {p.stream for p in pages} == set(conn.streams)
    quiet = [p for p in pages if p.stream in checks]
    assert all(p.cursor == cursor and not p.records for p in quiet)   # cursors stay put


def test_a_checked_stream_that_changed_is_queried_in_a_second_call() -> None:
    conn = _connector()
    seen: list[dict[str, Any]] = []
    cursor = Cursor(modstamp=NOW - timedelta(minutes=1))
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _composite(rsps, _quiet_or_changed({"Account"}), seen)
        list(conn.read_many({n: cursor for n in conn.streams}, cycle_start=NOW))
    assert conn.calls.by_operation()["composite"] == 2
    second = [s["referenceId"] for s in seen[1]["compositeRequest"]]
    assert second == ["Account_q", "Account_deleted"]


def test_streams_without_a_cursor_are_queried_not_checked() -> None:
    conn = _connector()
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _composite(rsps, _quiet_or_changed(set()))
        list(conn.read_many({n: None for n in conn.streams}, cycle_start=NOW))
    assert conn.calls.by_operation()["composite"] == 2


def test_lookup_quotes_an_email_with_a_quote_and_a_backslash() -> None:
    conn = _connector()
    email = "o'brien\\x@example.com"
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.get(f"{DATA}/query/", json={"totalSize": 1, "done": True, "records": [
            {"Id": "00Q000000000009", "Email": email}]})
        found = conn.lookup("Lead", "Email", [email])
        soql = parse_qs(urlparse(rsps.calls[-1].request.url).query)["q"][0]
    assert soql == "SELECT Id, Email FROM Lead WHERE Email IN ('o\\'brien\\\\x@example.com')"
    assert found == {email: ["00Q000000000009"]}


def test_field_names_that_are_not_identifiers_are_refused() -> None:
    conn = _connector()
    with pytest.raises(ConfigError):
        conn.lookup("Lead", "Email) OR (Id != null", ["x"])


def test_a_lookup_answered_in_several_pages_reads_them_all() -> None:
    conn = _connector()
    more = "/services/data/v59.0/query/01g-7"
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.get(f"{DATA}/query/", json={"totalSize": 3, "done": False, "nextRecordsUrl": more,
                                         "records": [{"Id": "00Q1", "Email": "a@x.io"},
                                                     {"Id": "00Q2", "Email": "b@x.io"}]})
        rsps.get(f"{INSTANCE}{more}", json={"totalSize": 3, "done": True,
                                            "records": [{"Id": "00Q3", "Email": "a@x.io"}]})
        found = conn.lookup("Lead", "Email", ["a@x.io", "b@x.io"])
    assert found == {"a@x.io": ["00Q1", "00Q3"], "b@x.io": ["00Q2"]}


def test_expired_session_mid_read_relogs_in_once_and_continues() -> None:
    conn = _connector()
    t = NOW - timedelta(minutes=10)
    first = {"totalSize": 2, "done": False, "nextRecordsUrl": "/services/data/v59.0/query/01g-1",
             "records": [_row("Lead", "00Q000000000001", t)]}
    second = {"totalSize": 2, "done": True, "records": [_row("Lead", "00Q000000000002", t)]}
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    calls = [0]

    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        calls[0] += 1
        if calls[0] == 2:          # the call that carries the next page
            return 401, {}, json.dumps(expired)
        subs = json.loads(request.body)["compositeRequest"]
        return 200, {}, json.dumps({"compositeResponse": [
            {"referenceId": sub["referenceId"], "httpStatusCode": 200, "httpHeaders": {},
             "body": first if sub["referenceId"] == "Lead_q" else second
             if sub["referenceId"] == "Lead_more" else {"deletedRecords": []}}
            for sub in subs]})

    with responses.RequestsMock() as rsps:
        logins = _soap_login(rsps)
        rsps.add_callback(responses.POST, f"{DATA}/composite", callback=reply)
        pages = list(conn.read("Lead", Cursor(modstamp=t), cycle_start=NOW))
        auth_headers = [c.request.headers.get("Authorization") for c in rsps.calls
                        if c.request.url.endswith("/composite")]
    assert logins == [2]
    assert auth_headers == ["Bearer SESSION1", "Bearer SESSION1", "Bearer SESSION2"]
    assert [r.id for p in pages for r in p.records] == ["00Q000000000001", "00Q000000000002"]


def test_a_session_that_expires_again_right_after_relogin_is_an_auth_error() -> None:
    conn = _connector()
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    with responses.RequestsMock() as rsps:
        logins = _soap_login(rsps)
        rsps.post(f"{DATA}/composite", json=expired, status=401)
        with pytest.raises(AuthError):
            list(conn.read("Lead", None, cycle_start=NOW))
    assert logins == [2]


def test_server_errors_are_retried_and_quota_exhaustion_is_not() -> None:
    conn = _connector()
    ok = {"compositeResponse": [{"referenceId": "Lead_q", "httpStatusCode": 200,
                                 "body": {"totalSize": 0, "done": True, "records": []}}]}
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.post(f"{DATA}/composite", json=[{"message": "x", "errorCode": "SERVER_ERROR"}],
                  status=503)
        rsps.post(f"{DATA}/composite", json=ok)
        assert [p.done for p in conn.read("Lead", None, cycle_start=NOW)] == [True]
        rsps.post(f"{DATA}/composite", status=403, json=[
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
        with pytest.raises(QuotaExhausted):
            list(conn.read("Lead", None, cycle_start=NOW))
    assert conn.calls.by_operation()["composite"] == 3


def test_budget_stops_the_read_before_the_call_that_crosses_the_share() -> None:
    conn = _connector(_settings(daily_budget_share=0.2))
    page = {"totalSize": 10_000, "done": False, "nextRecordsUrl": "/services/data/v59.0/query/L",
            "records": [_row("Lead", "00Q000000000001", NOW - timedelta(days=1))]}
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _composite(rsps, lambda ref, q: page, headers={"Sforce-Limit-Info": "api-usage=1/10"})
        committed = []
        with pytest.raises(BudgetExhausted):
            for p in conn.read("Lead", None, cycle_start=NOW):
                committed.append(p.cursor)
    assert conn.calls.total - conn.calls.by_operation()["login"] == 2   # 20% of 10
    assert committed and committed[-1].modstamp is not None


def test_writes_go_200_per_collection_in_one_call_and_results_are_classified_in_order(
) -> None:
    conn = _connector()
    items = [WriteItem(fields={"Lead_Score__c": i}, id=f"00Q{i:012d}") for i in range(450)]

    def collection(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for rec in records:
            n = int(rec["Id"][3:])
            if n % 50 == 7:
                out.append({"id": rec["Id"], "success": False, "errors": [
                    {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}]})
            elif n % 50 == 9:
                out.append({"id": rec["Id"], "success": False, "errors": [
                    {"statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                     "message": "bad value for restricted picklist field: Hot",
                     "fields": ["Lifecycle_Stage__c"]}]})
            else:
                out.append({"id": rec["Id"], "success": True, "errors": []})
        return out

    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        subs = json.loads(request.body)["compositeRequest"]
        return 200, {}, json.dumps({"compositeResponse": [
            {"referenceId": sub["referenceId"], "httpStatusCode": 200, "httpHeaders": {},
             "body": collection(sub["body"]["records"])} for sub in subs]})

    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.add_callback(responses.POST, f"{DATA}/composite", callback=reply)
        results = conn.write("Lead", "update", items)
        sizes = [len(sub["body"]["records"]) for c in rsps.calls if c.request.method == "POST"
                 and c.request.url.endswith("/composite")
                 for sub in json.loads(c.request.body)["compositeRequest"]]
    assert sizes == [200, 200, 50]
    assert conn.calls.by_operation()["composite_write"] == 1
    assert [r.ref.id for r in results] == [i.id for i in items]
    assert results[7].status == "retryable" and results[7].code == "UNABLE_TO_LOCK_ROW"
    assert results[9].status == "rejected"
    assert results[9].code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert "Lifecycle_Stage__c" in (results[9].message or "")
    assert results[0].ok


def test_task_create_upserts_by_idempotency_key() -> None:
    conn = _connector()
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.patch(f"{DATA}/composite/sobjects/Task/Idempotency_Key__c",
                   json=[{"id": "00T000000000001", "success": True, "created": True,
                          "errors": []}])
        results = conn.write("Task", "create", [WriteItem(
            fields={"Subject": "Call back", "WhoId": "00Q000000000001"}, key="alert:abc")])
        sent = json.loads(rsps.calls[-1].request.body)["records"][0]
    assert sent["Idempotency_Key__c"] == "alert:abc"
    assert results[0].ok and results[0].id == "00T000000000001"
    assert results[0].ref.key == "alert:abc"


def test_a_batch_that_keeps_failing_comes_back_retryable_not_lost() -> None:
    conn = _connector(attempts=2)
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.patch(f"{DATA}/composite/sobjects", status=500,
                   json=[{"message": "boom", "errorCode": "UNKNOWN_EXCEPTION"}])
        rsps.patch(f"{DATA}/composite/sobjects", status=500,
                   json=[{"message": "boom", "errorCode": "UNKNOWN_EXCEPTION"}])
        results = conn.write("Lead", "update", [WriteItem(fields={"Status": "Accepted"},
                                                          id="00Q000000000001")])
    assert results[0].status == "retryable"


def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.mark.parametrize("auth,extra,grant", [
    ("oauth_password", {"consumer_key": "ck", "consumer_secret": SecretStr("cs")}, "password"),
    ("jwt", {"consumer_key": "ck"}, "urn:ietf:params:oauth:grant-type:jwt-bearer"),
    ("client_credentials", {"consumer_key": "ck", "consumer_secret": SecretStr("cs"),
                            "domain": "acme.my", "username": None}, "client_credentials"),
])
def test_oauth_flows_post_the_right_grant_to_the_login_url(auth: str, extra: dict[str, Any],
                                                          grant: str) -> None:
    if auth == "jwt":
        extra = {**extra, "private_key": SecretStr(_pem())}
    settings = _settings(auth=auth, login_url="https://login.sandbox.test", **extra)
    conn = _connector(settings)
    with responses.RequestsMock() as rsps:
        rsps.post("https://login.sandbox.test/services/oauth2/token",
                  json={"access_token": "TOKEN", "instance_url": INSTANCE})
        rsps.get(f"{DATA}/sobjects/Lead/describe", json={"fields": [
            {"name": "Status", "label": "Status", "type": "picklist", "updateable": True,
             "picklistValues": [{"value": "Open", "active": True}]}]})
        schema = conn.describe("Lead")
        token_body = parse_qs(rsps.calls[0].request.body)
    assert token_body["grant_type"] == [grant]
    assert schema.fields["Status"].options == ("Open",)


def test_session_id_auth_makes_no_login_and_cannot_relogin() -> None:
    settings = _settings(auth="session", session_id=SecretStr("SID"), instance_url=INSTANCE)
    conn = _connector(settings)
    with responses.RequestsMock() as rsps:
        rsps.post(f"{DATA}/composite", status=401, json=[
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        with pytest.raises(AuthError) as info:
            list(conn.read("Lead", None, cycle_start=NOW))
    assert "session" in info.value.hint
    assert conn.calls.by_operation().get("login") is None


def test_missing_credentials_are_a_config_error_naming_the_settings() -> None:
    conn = _connector(SalesforceSettings(auth="jwt", username="u"))
    with pytest.raises(ConfigError) as info:
        conn.describe("Lead")
    assert "salesforce.consumer_key" in str(info.value)


def test_custom_ca_bundle_is_used_for_every_request(tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    client = SalesforceClient(_settings(), ca_bundle=ca)
    assert client.session.verify == str(ca)


@pytest.mark.parametrize("status,code,message,expected", [
    (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", "QuotaExhausted"),
    (403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.", "RateLimited"),
    (429, "REQUEST_LIMIT_EXCEEDED", "Too many requests.", "RateLimited"),
    (503, "SERVER_UNAVAILABLE", "down", "ServerError"),
    (500, "UNKNOWN_EXCEPTION", "boom", "ServerError"),
    (400, "UNABLE_TO_LOCK_ROW", "locked", "LockContention"),
    (401, "INVALID_SESSION_ID", "expired", "AuthError"),
    (400, "MALFORMED_QUERY", "bad", "FatalError"),
])
def test_error_table_classifies_by_status_and_code(status: int, code: str, message: str,
                                                   expected: str) -> None:
    from connectors.salesforce.errors import classify
    error = classify(status, [{"errorCode": code, "message": message}], operation="query")
    assert type(error).__name__ == expected
    assert error.fields["code"] == code


def test_both_connectors_satisfy_the_pipeline_protocol() -> None:
    from connectors.base import Connector
    from connectors.hubspot.client import HubSpotClient
    from connectors.hubspot.connector import HubSpotConnector
    from syncagent.settings import HubSpotSettings

    hs = HubSpotConnector(HubSpotClient(HubSpotSettings(access_token=SecretStr("pat"))),
                          lookback=timedelta(seconds=60))
    assert isinstance(_connector(), Connector)
    assert isinstance(hs, Connector)
    assert hs.api_calls == 0


def test_a_very_wide_field_list_is_split_into_queries_that_each_fit_a_url() -> None:
    """900 mapped fields make a query of ~30 KB. A Composite subrequest url is modelled with a
    plain request's 16,384-byte limit (undocumented for subrequests: the harsher case), so the
    paging query selects what fits and the rest is read by Id for the rows it brought, in
    queries that each fit; every record still carries every field, merged by Id."""
    from connectors.salesforce.connector import with_fields
    from connectors.salesforce.streams import STREAMS

    extra = [f"Custom_Field_Number_{i:04d}__c" for i in range(900)]
    wide = with_fields(STREAMS[0], extra)
    policy = RetryPolicy(attempts=1, sleep=lambda s: None)
    conn = SalesforceConnector(SalesforceClient(_settings(), retry=policy),
                               lookback=timedelta(seconds=300), stream_table=(wide,))
    ids = [f"00Q{n:015d}" for n in range(3)]
    org = {rid: {"Id": rid, "SystemModstamp": "2026-03-01T11:00:00.000+0000",
                 **{name: f"{rid}:{name}" for name in wide.fields
                    if name not in ("Id", "SystemModstamp")}} for rid in ids}

    def answer(ref: str, soql: str) -> dict[str, Any]:
        selected = [f.strip() for f in soql[len("SELECT "):soql.index(" FROM ")].split(",")]
        wanted = [rid for rid in ids if "WHERE Id IN" not in soql or f"'{rid}'" in soql]
        rows = [{"attributes": {"type": "Lead"}, **{f: org[rid].get(f) for f in selected}}
                for rid in wanted]
        return {"totalSize": len(rows), "done": True, "records": rows}

    seen: list[dict[str, Any]] = []
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        _composite(rsps, answer, seen)
        pages = list(conn.read("Lead", None, cycle_start=NOW))
        urls = [c.request.url for c in rsps.calls]
    sub_urls = [sub["url"] for call in seen for sub in call["compositeRequest"]]
    assert len(sub_urls) > 2                         # the paging query and the by-id reads
    assert all(len(u.encode()) <= 14_000 for u in sub_urls)
    assert all(len(u.encode()) < 16_384 for u in urls)
    records = [r for page in pages for r in page.records]
    assert [r.id for r in records] == ids
    for record in records:
        assert all(record.fields.get(name) == f"{record.id}:{name}" for name in extra)


def test_keyed_and_unkeyed_task_creates_keep_their_order() -> None:
    conn = _connector()
    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        subs = json.loads(request.body)["compositeRequest"]
        ids = {"PATCH": "00T00000000000K", "POST": "00T00000000000P"}
        return 200, {}, json.dumps({"compositeResponse": [
            {"referenceId": sub["referenceId"], "httpStatusCode": 200, "httpHeaders": {},
             "body": [{"id": ids[sub["method"]], "success": True, "errors": []}]}
            for sub in subs[::-1]]})

    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.add_callback(responses.POST, f"{DATA}/composite", callback=reply)
        results = conn.write("Task", "create", [WriteItem(fields={"Subject": "plain"}),
                                                WriteItem(fields={"Subject": "k"}, key="k1")])
        subs = json.loads(rsps.calls[-1].request.body)["compositeRequest"]
    assert [s["url"].endswith("/Task/Idempotency_Key__c") for s in subs] == [True, False]
    assert [r.id for r in results] == ["00T00000000000P", "00T00000000000K"]


def test_a_lookup_too_long_for_a_url_is_split_into_queries_that_each_fit() -> None:
    """200 long e-mails make a ~17 KB query: too long for a GET and (modelled harshly) for a
    Composite subrequest url too, so it goes as two queries, still in one call."""
    conn = _connector()
    emails = [f"{'x' * 60}{n}@example-{n}.com" for n in range(200)]
    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        seen: list[dict[str, Any]] = []
        _composite(rsps, lambda ref, q: {"totalSize": 0, "done": True, "records": []}, seen)
        assert conn.lookup("Lead", "Email", emails) == {}
        urls = [c.request.url for c in rsps.calls]
    sub_urls = [sub["url"] for call in seen for sub in call["compositeRequest"]]
    assert len(sub_urls) == 2 and all(len(u.encode()) < 16_384 for u in sub_urls)
    assert sum(u.count("example-") for u in sub_urls) == 200     # every e-mail, once
    assert all(len(u.encode()) < 16_384 for u in urls)
    assert conn.calls.by_operation()["composite"] == 1
