"""Salesforce connector against the sandbox, through simple-salesforce over HTTPS."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.base import Cursor, Page, RemoteRecord, WriteItem
from connectors.budget import DailyBudget
from connectors.salesforce.connector import SalesforceConnector, with_options
from connectors.salesforce.streams import STREAMS
from syncagent.errors import AuthError, BudgetExhausted
from syncagent.sandbox.server import RunningSandbox
from tests.connectors.conftest import fast_retry, sf_connector

HOT = ("Lead", "Contact", "Task", "Event", "CampaignMember")


def _drain(conn: SalesforceConnector, cursors: dict[str, Cursor | None],
           sandbox: RunningSandbox) -> tuple[list[Page], dict[str, Cursor]]:
    pages = list(conn.read_many(cursors, cycle_start=sandbox.ctx.clock.now()))
    final = dict(cursors)
    for page in pages:
        final[page.stream] = page.cursor
    return pages, {k: v for k, v in final.items() if v is not None}


def _ids(pages: list[Page], stream: str) -> list[str]:
    return [r.id for p in pages if p.stream == stream for r in p.records]


def test_backfill_reads_every_row_once_in_close_to_the_fewest_calls(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=2500)
    conn = sf_connector(sandbox)
    pages, _ = _drain(conn, {name: None for name in conn.streams}, sandbox)
    reads = conn.calls.total - conn.calls.by_operation().get("login", 0)
    minimum = 0
    for spec in STREAMS:
        rows = sum(1 for r in sandbox.ctx.sf.records(spec.object))
        minimum += math.ceil(rows / 2000)
        ids = [r.id for p in pages if p.stream == spec.name for r in p.records
               if isinstance(r, RemoteRecord)]
        assert len(ids) == len(set(ids))
        if spec.kind == "records":
            assert len(ids) == rows, spec.name
    assert reads <= 1.05 * minimum


def test_incremental_read_with_nothing_changed_is_one_composite_call(sandbox: Any) -> None:
    conn = sf_connector(sandbox)
    _, cursors = _drain(conn, {name: None for name in HOT}, sandbox)
    conn.calls.reset()
    pages, _ = _drain(conn, dict(cursors), sandbox)
    assert conn.calls.by_operation() == {"composite": 1}
    assert all(not p.records for p in pages)


def test_late_committed_row_inside_the_lookback_is_read_once(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=50)
    conn = sf_connector(sandbox, lookback=300)
    _, cursors = _drain(conn, {"Lead": None}, sandbox)
    high = cursors["Lead"].modstamp
    assert high is not None
    late_stamp = high - timedelta(seconds=60)      # committed now, stamped a minute ago
    rep = _a_rep(sandbox)
    [late_id] = sandbox.ctx.sf.insert("Lead", [{"LastName": "Late", "Company": "Slow Tx",
                                                "OwnerId": rep, "SystemModstamp": late_stamp}])
    pages, cursors = _drain(conn, cursors, sandbox)
    assert _ids(pages, "Lead") == [late_id]
    pages, _ = _drain(conn, cursors, sandbox)
    assert _ids(pages, "Lead") == []


def test_the_agents_own_writes_inside_the_lookback_are_not_read_again(
        sandbox_factory: Any) -> None:
    """Rows the agent's user last modified before the cursor were read already: the re-read
    window leaves them out, while a rep's edit stamped in the same window is still read."""
    sandbox = sandbox_factory(leads=60, seed=23)
    conn = sf_connector(sandbox, lookback=300)
    _, cursors = _drain(conn, {"Lead": None}, sandbox)
    high = cursors["Lead"].modstamp
    assert high is not None
    stamp = high - timedelta(seconds=30)
    sf = sandbox.ctx.sf
    [ours, theirs] = sf.insert("Lead", [
        {"LastName": "Ours", "Company": "Agent Tx", "SystemModstamp": stamp},
        {"LastName": "Theirs", "Company": "Rep Tx", "OwnerId": _a_rep(sandbox),
         "SystemModstamp": stamp}])
    pages, _ = _drain(conn, cursors, sandbox)
    assert _ids(pages, "Lead") == [theirs]
    assert ours not in _ids(pages, "Lead")


def test_a_row_of_the_agents_user_stamped_in_the_cursors_second_is_read(
        sandbox_factory: Any) -> None:
    """Salesforce stamps to the second: a row the agent's user (or another tool logged in
    as it, a web form owned by it) writes after a read, in the same second the read's
    cursor holds, carries a stamp at or before that cursor. The read never saw it, so the
    re-read window must not leave it out (it was lost for good: tests/e2e/
    test_machine_owned_mql.py failed when its lead came within the first cycle's second)."""
    sandbox = sandbox_factory(leads=40, seed=29)
    conn = sf_connector(sandbox, lookback=300)
    _, cursors = _drain(conn, {"Lead": None}, sandbox)
    high = cursors["Lead"].modstamp
    assert high is not None
    same_second = high.replace(microsecond=0)   # the stamp of a write just after the read
    sf = sandbox.ctx.sf
    [after_the_read] = sf.insert("Lead", [
        {"LastName": "Web", "Company": "Form", "OwnerId": sf.integration_user_id,
         "SystemModstamp": same_second}])
    pages, cursors = _drain(conn, cursors, sandbox)
    assert _ids(pages, "Lead") == [after_the_read]
    pages, _ = _drain(conn, cursors, sandbox)
    assert _ids(pages, "Lead") == []   # read once: the cursor's keys drop it afterwards


def _a_rep(sandbox: Any) -> str:
    integration = sandbox.ctx.sf.integration_user_id
    return next(u["Id"] for u in sandbox.ctx.sf.records("User")
                if u["Id"] != integration and u.get("IsActive"))


def test_a_deleted_lead_is_reported_as_a_delete(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=50)
    conn = sf_connector(sandbox)
    pages, cursors = _drain(conn, {"Lead": None}, sandbox)
    victim = _ids(pages, "Lead")[0]
    sandbox.ctx.sf.delete("Lead", victim)
    pages, _ = _drain(conn, cursors, sandbox)
    records = [r for p in pages for r in p.records if isinstance(r, RemoteRecord)]
    assert [(r.id, r.deleted) for r in records] == [(victim, True)]


def test_an_expired_session_mid_read_relogs_in_and_loses_nothing(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=2500, faults={"session_expiry_after_calls": 2})
    small = with_options(STREAMS[0], batch_size=200)          # 200-row batches: many pages
    conn = sf_connector(sandbox, streams=(small,))
    pages, _ = _drain(conn, {"Lead": None}, sandbox)
    ids = _ids(pages, "Lead")
    assert len(ids) == len(set(ids)) == sum(1 for _ in sandbox.ctx.sf.records("Lead"))
    assert conn.client.reauths >= 3


def test_wrong_password_is_an_auth_error(sandbox: Any) -> None:
    conn = sf_connector(sandbox, password=SecretStr("wrong"))
    with pytest.raises(AuthError):
        list(conn.read("Lead", None))


@pytest.mark.parametrize("flow", ["oauth_password", "jwt", "client_credentials", "session"])
def test_every_auth_flow_reaches_the_sandbox(sandbox: Any, flow: str) -> None:
    info = sandbox.info["salesforce"]
    extra: dict[str, Any] = {"auth": flow, "consumer_key": info["consumer_key"],
                             "consumer_secret": SecretStr(info["consumer_secret"])}
    if flow == "jwt":
        extra["private_key_file"] = info["jwt_private_key"]
    if flow == "client_credentials":
        extra["domain"] = "syncagent-sandbox.my"
    if flow == "session":
        extra.update(session_id=SecretStr(info["session_id"]), instance_url=sandbox.url)
    conn = sf_connector(sandbox, **extra)
    schema = conn.describe("Lead")
    assert "Lifecycle_Stage__c" in schema.fields


def test_budget_stops_cleanly_and_the_next_run_resumes_exactly(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=2500, faults={"salesforce_daily_quota": 30})
    small = with_options(STREAMS[0], batch_size=200)          # 200-row batches: many pages
    conn = sf_connector(sandbox, streams=(small,), daily_budget_share=0.2)
    committed: Cursor | None = None
    first: list[str] = []
    with pytest.raises(BudgetExhausted) as info:
        for page in conn.read("Lead", None, cycle_start=sandbox.ctx.clock.now()):
            first += [r.id for r in page.records]
            committed = page.cursor
    assert conn.calls.total - conn.calls.by_operation()["login"] <= 6      # 20% of 30
    assert "budget" in str(info.value)
    # the next run (the window has rolled on: a fresh budget) resumes from the committed cursor
    conn2 = sf_connector(sandbox, streams=(small,),
                         budget=DailyBudget("salesforce", 1.0))
    second = [r.id for p in conn2.read("Lead", committed, cycle_start=sandbox.ctx.clock.now())
              for r in p.records]
    everyone = {r["Id"] for r in sandbox.ctx.sf.records("Lead")}
    assert not set(first) & set(second)
    assert set(first) | set(second) == everyone


def test_updates_go_1000_per_call_and_each_ends_ok_or_rejected_with_reason(
        sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=1000, faults={"seed": 3, "salesforce": {
        "rate_500": 0.10, "rate_429": 0.05, "rate_hang": 0.02, "hang_seconds": 2,
        "rate_reject": 0.03}})
    conn = sf_connector(sandbox, retry=fast_retry(attempts=10), timeout_seconds=1.0)
    ids = [r["Id"] for r in sandbox.ctx.sf.records("Lead") if not r.get("IsConverted")][:1000]
    pending = [WriteItem(fields={"Lead_Score__c": 42}, id=i) for i in ids]
    final: dict[str, Any] = {}
    for _ in range(5):                       # the pipeline's later retries of retryable results
        results = conn.write("Lead", "update", pending)
        pending = []
        for item, result in zip([WriteItem(fields={"Lead_Score__c": 42}, id=r.ref.id)
                                 for r in results], results, strict=True):
            if result.status == "retryable":
                pending.append(item)
            else:
                final[result.ref.id or ""] = result
        if not pending:
            break
    assert not pending and len(final) == len(ids)
    statuses = Counter(r.status for r in final.values())
    assert statuses["rejected"] > 0 and statuses["ok"] > 0
    for result in final.values():
        if result.status == "rejected":
            assert result.code and result.message
        else:
            assert sandbox.ctx.sf.get("Lead", result.ref.id)["Lead_Score__c"] == 42
    writes = sum(n for op, n in conn.calls.by_operation().items()
                 if op.startswith("coll") or op == "composite_write")
    attempts_without_faults = math.ceil(len(ids) / 1000)    # five collections of 200 a call
    assert writes >= attempts_without_faults


def test_updates_cost_one_call_per_1000_records(sandbox_factory: Any) -> None:
    """Without faults: ceil(n/200) sObject Collections, five to a Composite call: exactly
    ceil(n/1000) calls (20,000 -> 20)."""
    sandbox = sandbox_factory(leads=2000)
    conn = sf_connector(sandbox)
    ids = [r["Id"] for r in sandbox.ctx.sf.records("Lead") if not r.get("IsConverted")][:2000]
    items = [WriteItem(fields={"Lead_Score__c": n % 100}, id=i) for n, i in enumerate(ids)]
    results = conn.write("Lead", "update", items)
    assert all(r.ok for r in results)
    assert conn.calls.by_operation() == {"login": 1, "composite_write": math.ceil(len(ids) / 1000)}
    assert sorted(r["Lead_Score__c"] for r in sandbox.ctx.sf.records("Lead")
                  if r["Id"] in set(ids)) == sorted(n % 100 for n in range(len(ids)))


def test_task_create_with_the_same_key_twice_makes_one_task(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=20)
    conn = sf_connector(sandbox)
    lead = next(iter(sandbox.ctx.sf.records("Lead")))["Id"]
    item = WriteItem(fields={"Subject": "Hot lead: call today", "WhoId": lead,
                             "Status": "Not Started"}, key="alert:lead-hot:1")
    first = conn.write("Task", "create", [item])
    again = conn.write("Task", "create", [item])       # e.g. the first answer was lost
    assert first[0].ok and again[0].ok and first[0].id == again[0].id
    tasks = [t for t in sandbox.ctx.sf.records("Task")
             if t.get("Idempotency_Key__c") == "alert:lead-hot:1"]
    assert len(tasks) == 1


def test_a_plain_create_the_org_made_is_found_by_its_read_back(sandbox_factory: Any) -> None:
    """readback.py's query as the org answers it: the agent's own Task, made just now, with
    the values sent (a date and a reference as the org returns them), and no older one."""
    from datetime import UTC, datetime

    from connectors.base import WriteRef
    from connectors.salesforce.readback import settle_creates

    sandbox = sandbox_factory(leads=20)
    conn = sf_connector(sandbox)
    lead = next(iter(sandbox.ctx.sf.records("Lead")))["Id"]
    fields = {"Subject": "Call back", "WhoId": lead, "ActivityDate": "2026-12-01",
              "Status": "Not Started"}
    sent_at = datetime.now(UTC)
    [made] = conn.write("Task", "create", [WriteItem(fields=dict(fields))])
    other = {**fields, "Subject": "Never sent"}
    records = [{"attributes": {"type": "Task"}, **fields}, {"attributes": {}, **other}]
    refs = [WriteRef("Task", None), WriteRef("Task", None)]
    found, missing = settle_creates(conn.client, "Task", records, refs, sent_at, "lost")
    assert (found.status, found.id, found.created) == ("ok", made.id, True)
    assert (missing.status, missing.code) == ("retryable", "NOT_LANDED")


def test_a_validation_error_is_permanent_with_the_api_code(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=20)
    conn = sf_connector(sandbox)
    lead = next(iter(sandbox.ctx.sf.records("Lead")))["Id"]
    [result] = conn.write("Lead", "update", [WriteItem(fields={"Lifecycle_Stage__c": "Hot"},
                                                       id=lead)])
    assert result.status == "rejected"
    assert result.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert result.message


def test_reads_under_faults_emit_every_row_exactly_once(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(leads=2500, faults={"seed": 5, "salesforce": {
        "rate_500": 0.10, "rate_429": 0.05, "rate_hang": 0.02, "hang_seconds": 2,
        "rate_reset": 0.02}})
    small = with_options(STREAMS[0], batch_size=200)
    conn = sf_connector(sandbox, streams=(small,), retry=fast_retry(attempts=12),
                        timeout_seconds=1.0)
    pages, _ = _drain(conn, {"Lead": None}, sandbox)
    ids = _ids(pages, "Lead")
    assert len(ids) == len(set(ids)) == sum(1 for _ in sandbox.ctx.sf.records("Lead"))
    faults = sandbox.stats()["faults_injected"]
    assert sum(f["count"] for f in faults) > 0


def test_a_quiet_cycle_after_a_big_backfill_is_one_call(sandbox_factory: Any) -> None:
    """The finished backfill moves the cursor to its cycle start, so 2,500 leads loaded long
    before are not re-read (deduped or not) by the next poll."""
    sandbox = sandbox_factory(leads=2500)
    sandbox.ctx.clock.advance(900)               # the load is older than the lookback
    conn = sf_connector(sandbox)
    _, cursors = _drain(conn, {name: None for name in conn.streams}, sandbox)
    sandbox.ctx.clock.advance(60)
    conn.calls.reset()
    pages, cursors = _drain(conn, cursors, sandbox)
    assert conn.calls.by_operation() == {"composite": 1}       # all eight streams
    assert all(not p.records for p in pages)
    # a change in a change-checked stream costs one more call and is read
    account = next(iter(sandbox.ctx.sf.records("Account")))["Id"]
    sandbox.ctx.sf.update("Account", account, {"Industry": "Banking"})
    sandbox.ctx.clock.advance(60)
    conn.calls.reset()
    pages, _ = _drain(conn, cursors, sandbox)
    assert conn.calls.by_operation() == {"composite": 2}
    assert _ids(pages, "Account") == [account]
