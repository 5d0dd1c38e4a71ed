"""Control endpoints, request-level faults, stats, simulation and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce, format_soql

from syncagent.commands.sandbox import _sandbox_config
from syncagent.sandbox.common import SandboxConfig
from syncagent.sandbox.server import RunningSandbox
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.conftest import hs_call

ROOT = Path(__file__).resolve().parents[2]


def salesforce_client(running: RunningSandbox) -> Salesforce:
    """The unmodified simple-salesforce on the sandbox session id (its requests session
    trusts the sandbox CA)."""
    from syncagent.sandbox.salesforce import sandbox_session

    return Salesforce(instance_url=running.url, session_id=running.info["salesforce"][
        "session_id"], session=sandbox_session(running.url, running.ca_cert))


def test_info_answers_the_contract_json_over_https(sandbox: RunningSandbox) -> None:
    body = requests.get(f"{sandbox.url}/__sandbox/info", verify=sandbox.ca_cert,
                        timeout=10).json()
    assert set(body) == {"salesforce", "hubspot", "ca_cert", "profile", "config"}
    assert body["profile"] == body["config"]["profile"] == "configured"
    assert body["config"]["hubspot_tier"] == "enterprise"
    assert "crm.objects.owners.read" in body["config"]["hubspot_scopes"]
    assert {"instance_url", "username", "password", "security_token", "consumer_key",
            "consumer_secret", "session_id"} <= set(body["salesforce"])
    # the limits it enforces, so an agent built from this answer paces itself to them
    assert set(body["hubspot"]) == {"base_url", "access_token", "requests_per_10s",
                                    "searches_per_second"}
    limits = sandbox.ctx.faults.profile
    assert (body["hubspot"]["requests_per_10s"], body["hubspot"]["searches_per_second"]) == (
        limits.hubspot_requests_per_10s, limits.hubspot_searches_per_second)
    assert body["salesforce"]["instance_url"] == body["hubspot"]["base_url"] == sandbox.url
    assert Path(body["ca_cert"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in Path(body["salesforce"]["jwt_private_key"]).read_text()
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{sandbox.url}/__sandbox/info", timeout=10)   # the CA is needed


def test_stats_count_calls_by_system_method_path_and_status(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=20)
    hs_call(running, "GET", "/crm/v3/objects/contacts/1")
    hs_call(running, "GET", "/crm/v3/objects/contacts/999999")
    hs_call(running, "POST", "/crm/v3/objects/contacts", {"properties": {"email": "s@x.io"}})
    salesforce_client(running).query("SELECT Id FROM Lead LIMIT 1")
    stats = running.stats()
    calls = {(c["system"], c["method"], c["path"], c["status"]): c["count"]
             for c in stats["calls"]}
    assert calls[("hubspot", "GET", "/crm/v3/objects/contacts/{record_id}", 200)] == 1
    assert calls[("hubspot", "GET", "/crm/v3/objects/contacts/{record_id}", 404)] == 1
    assert calls[("hubspot", "POST", "/crm/v3/objects/contacts", 201)] == 1
    assert stats["calls_by_system"] == {"hubspot": 3, "salesforce": 1}
    assert stats["records_written"] == {"contacts": 1}
    assert stats["daily_usage"]["hubspot"]["used"] == 3
    assert stats["daily_usage"]["salesforce"]["used"] >= 1


def _statuses(running: RunningSandbox, n: int) -> list[int]:
    return [hs_call(running, "GET", "/crm/v3/owners/?limit=1").status_code for _ in range(n)]


def test_fault_draws_are_deterministic_under_the_profile_seed(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=20)
    profile = {"seed": 11, "hubspot": {"rate_500": 0.3, "rate_503": 0.2}}
    running.set_faults(profile)
    first = _statuses(running, 15)
    running.set_faults(profile)
    assert _statuses(running, 15) == first
    assert {500, 503, 200} <= set(first)
    running.set_faults({**profile, "seed": 12})
    assert _statuses(running, 15) != first


def test_injected_errors_have_each_vendors_body(sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=20, faults={"salesforce": {"rate_503": 1.0},
                                                "hubspot": {"rate_500": 1.0}})
    sf = requests.get(f"{running.url}/services/data/v59.0/limits", verify=running.ca_cert,
                      timeout=10)
    assert sf.status_code == 503
    assert sf.json() == [{"message": "Server Unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
    hs = hs_call(running, "GET", "/crm/v3/owners/")
    assert hs.status_code == 500
    assert hs.json()["status"] == "error" and hs.json()["category"] == "INTERNAL_ERROR"
    assert "correlationId" in hs.json()


def test_connection_reset_drops_the_connection(sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=20, faults={"hubspot": {"rate_reset": 1.0}})
    with pytest.raises(requests.exceptions.ConnectionError):
        hs_call(running, "GET", "/crm/v3/owners/")
    running.set_faults({})
    assert hs_call(running, "GET", "/crm/v3/owners/").ok


def test_hang_outlasts_the_client_timeout_but_the_write_happens(
        sandbox_factory: SandboxFactory) -> None:
    """The harsh case for idempotency: the client times out, the write was applied."""
    running = sandbox_factory(leads=20, faults={"hubspot": {"rate_hang": 1.0,
                                                            "hang_seconds": 2}})
    with pytest.raises(requests.exceptions.ReadTimeout):
        hs_call(running, "POST", "/crm/v3/objects/contacts",
                {"properties": {"email": "hung@x.io"}}, timeout=0.3)
    assert "hung@x.io" in running.ctx.hs.store("contacts").by_email


def test_latency_is_added_per_system(sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=20, faults={"hubspot": {"latency_ms": 250}})
    began = time.monotonic()
    hs_call(running, "GET", "/crm/v3/owners/")
    assert time.monotonic() - began >= 0.25
    began = time.monotonic()
    requests.get(f"{running.url}/__sandbox/info", verify=running.ca_cert, timeout=10)
    assert time.monotonic() - began < 0.25


def test_record_rejections_fail_records_not_calls(sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=20, faults={"hubspot": {"rate_reject": 1.0}})
    answer = hs_call(running, "POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [
        {"id": "1", "properties": {"lead_grade": "A"}}]})
    assert answer.status_code == 207
    assert answer.json()["errors"][0]["context"]["ids"] == ["1"]


def test_simulated_rep_disqualification_is_visible_through_the_api(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=50)
    before = running.ctx.clock.now()
    done = running.simulate(minutes=90, events=30, rep_actions=4, seed=3)
    assert running.ctx.clock.now() - before >= timedelta(minutes=90)
    kinds = {a["action"] for a in done["rep_actions"]}
    assert kinds == {"status", "disqualify", "nurture", "reassign"}
    dq = next(a for a in done["rep_actions"] if a["action"] == "disqualify")
    sf = salesforce_client(running)
    lead = sf.query(format_soql("SELECT Status, Disqualified_Reason__c FROM Lead WHERE Id = {}",
                                dq["lead_id"]))["records"][0]
    assert lead["Status"] == "Unqualified"
    assert lead["Disqualified_Reason__c"] == dq["reason"]
    assert done["web_events"]["count"] == 30
    assert len(done["call_task_ids"]) == 5


def test_simulation_is_deterministic_and_reset_restores_the_seed(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=50)
    original = running.ctx.sf.records("Lead")
    statuses = {r["Id"]: r["Status"] for r in original}
    first = running.simulate(minutes=10, events=5, rep_actions=6, seed=9)
    running.reset()
    assert {r["Id"]: r["Status"] for r in running.ctx.sf.records("Lead")} == statuses
    assert running.stats()["calls"] == []
    second = running.simulate(minutes=10, events=5, rep_actions=6, seed=9)
    assert first["rep_actions"] == second["rep_actions"]


def test_bad_simulate_parameters_are_a_400(sandbox: RunningSandbox) -> None:
    answer = requests.post(f"{sandbox.url}/__sandbox/simulate", json={"minutes": -5},
                           verify=sandbox.ca_cert, timeout=10)
    assert answer.status_code == 400


def test_cli_serves_until_sigint_and_prints_the_info_url(tmp_path: Path) -> None:
    """`syncagent sandbox` is ready well under 10 s for 2,000 leads and stops on SIGINT."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    began = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "syncagent", "sandbox", "--port", "0",
                             "--leads", "2000", "--seed", "7"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info_url = ca = None
        for line in proc.stdout:
            if line.startswith("info:"):
                info_url = line.split(None, 1)[1].strip()
            if line.startswith("ca:"):
                ca = line.split(None, 1)[1].strip()
            if info_url and ca:
                break
        assert info_url and ca, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() - began < 10
        info = requests.get(info_url, verify=ca, timeout=10).json()
        assert info["ca_cert"] == ca
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0


def test_cli_rejects_a_bad_fault_file_with_a_clear_error(tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"hubspot": {"rate_500": 3}}))
    done = subprocess.run([sys.executable, "-m", "syncagent", "sandbox", "--faults",
                           str(faults)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "error: fault profile" in done.stderr and "hubspot.rate_500" in done.stderr


def test_info_reports_the_profile_scopes_and_tier_the_sandbox_started_with(
        sandbox_factory: SandboxFactory) -> None:
    config = SandboxConfig(profile="fresh", hubspot_scopes=("crm.objects.contacts.read",),
                           hubspot_tier="starter")
    running = sandbox_factory(leads=10, config=config)
    body = requests.get(f"{running.url}/__sandbox/info", verify=running.ca_cert,
                        timeout=10).json()
    assert body["profile"] == "fresh"
    assert body["config"] == {"profile": "fresh", "hubspot_tier": "starter",
                              "hubspot_scopes": ["crm.objects.contacts.read"]}
    running.reset()   # a reset rebuilds the same kind of org
    assert running.ctx.config.profile == "fresh" and running.ctx.sf.config.fresh


def test_cli_flags_become_the_sandbox_config() -> None:
    config = _sandbox_config("fresh", " crm.lists.read,crm.lists.write ,", "professional")
    assert config == SandboxConfig(profile="fresh", hubspot_tier="professional",
                                   hubspot_scopes=("crm.lists.read", "crm.lists.write"))
    assert _sandbox_config("configured", None, "enterprise") == SandboxConfig()
    assert _sandbox_config("configured", "", "enterprise").hubspot_scopes == ()


@pytest.mark.parametrize(("flag", "value"), [("--profile", "staging"),
                                             ("--hubspot-tier", "free")])
def test_cli_rejects_an_unknown_profile_or_tier_naming_the_flag(flag: str, value: str) -> None:
    done = subprocess.run([sys.executable, "-m", "syncagent", "sandbox", "--port", "0", flag,
                           value], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"unknown {flag} {value!r}" in done.stderr and "Use one of" in done.stderr
