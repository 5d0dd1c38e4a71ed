"""Who may read the dashboard, that no secret reaches a page, and the probes: /healthz,
/readyz (the rules of `status --check`, after real sandbox cycles) and /metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from state.store import StateStore
from syncagent.reports import REPORTS
from syncagent.settings import WebSettings
from syncagent.web.auth import is_loopback, require_auth_for_bind
from tests.e2e.clitools import Cli, copy_mappings
from tests.web.conftest import Serve

TOKEN = "tok-3f9a1c5e7b2d4f6a8c0e"
PASSWORD = "pw-9d8c7b6a5f4e3d2c1b0a"
SECRETS = {"web": {"token": TOKEN, "username": "admin", "password": PASSWORD},
           "salesforce": {"password": "sf-pass-51a2b3c4d5", "security_token": "sf-tok-6e7f8a9b",
                          "consumer_secret": "sf-consumer-0c1d2e3f"},
           "hubspot": {"access_token": "pat-na1-11112222-3333-4444-5555-666677778888"}}
EVERY_PATH = ["/", *(f"/reports/{n}" for n in REPORTS), *(f"/reports/{n}.json" for n in REPORTS),
              "/reports/nope", "/reports/funnel?by=year", "/healthz", "/readyz", "/metrics",
              "/no-such-page"]


def _secret_values() -> list[str]:
    return [value for section in SECRETS.values() for key, value in section.items()
            if key != "username"]


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
    ("example.com", False), ("", False)])
def test_only_loopback_binds_go_without_auth(host: str, local: bool) -> None:
    assert is_loopback(host) is local
    if local:
        require_auth_for_bind(host, WebSettings())
    else:
        with pytest.raises(Exception, match="no token or basic auth is configured"):
            require_auth_for_bind(host, WebSettings())
    require_auth_for_bind(host, WebSettings(token=TOKEN))  # type: ignore[arg-type]


def test_with_auth_set_every_path_but_healthz_needs_it(world_store: StateStore,
                                                       serve: Serve) -> None:
    base = serve(world_store, **SECRETS)
    bad: list[dict[str, Any]] = [
        {}, {"headers": {"Authorization": f"Bearer {TOKEN}x"}},
        {"headers": {"Authorization": f"Bearer {TOKEN[:-1]}"}},
        {"headers": {"Authorization": "Bearer "}}, {"auth": ("admin", PASSWORD + "x")},
        {"auth": ("root", PASSWORD)}, {"headers": {"Authorization": "Basic !!!notbase64"}},
        {"headers": {"Authorization": f"Token {TOKEN}"}}]
    for path in EVERY_PATH:
        for attempt in bad:
            answer = requests.get(base + path, timeout=10, **attempt)
            expected = 200 if path == "/healthz" else 401
            assert answer.status_code == expected, (path, attempt)
        for good in ({"headers": {"Authorization": f"Bearer {TOKEN}"}},
                     {"auth": ("admin", PASSWORD)}):
            answer = requests.get(base + path, timeout=10, **good)
            assert answer.status_code not in (401, 403), (path, good)
    challenge = requests.get(base + "/", timeout=10)
    assert challenge.headers["WWW-Authenticate"].startswith("Basic")


def test_no_secret_appears_on_any_page(world_store: StateStore, serve: Serve) -> None:
    base = serve(world_store, **SECRETS)
    for path in EVERY_PATH:
        for auth in (None, ("admin", PASSWORD)):
            answer = requests.get(base + path, timeout=10, auth=auth)
            body = answer.text + " ".join(f"{k}: {v}" for k, v in answer.headers.items())
            for secret in _secret_values():
                assert secret not in body, (path, auth is not None)


def test_healthz_only_says_the_process_is_up(empty_store: StateStore, serve: Serve) -> None:
    answer = requests.get(serve(empty_store) + "/healthz", timeout=10)
    assert answer.status_code == 200 and answer.text == "ok\n"


def test_metrics_parse_and_count_the_seeded_cycles(world_store: StateStore,
                                                   serve: Serve) -> None:
    answer = requests.get(serve(world_store) + "/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    cycles = {s.labels["status"]: s.value for s in families["syncagent_cycles"].samples
              if s.name == "syncagent_cycles_total"}
    assert cycles["ok"] == 2 and cycles["failed"] == 1 and cycles["partial"] == 0
    assert families["syncagent_dead_letters"].samples[0].value == 3
    last = families["syncagent_last_success_timestamp_seconds"].samples[0].value
    assert last == datetime(2026, 11, 30, 9, 1, tzinfo=UTC).timestamp()


def _ready(base: str) -> tuple[int, dict[str, Any]]:
    answer = requests.get(base + "/readyz", timeout=10)
    return answer.status_code, answer.json()


def test_readyz_is_503_after_a_failed_cycle_and_200_after_a_good_one(
        sandbox_factory: Any, tmp_path: Path, serve: Serve,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Real cycles against the sandbox; the dashboard judges them as `status --check` does."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = StateStore(url)
    store.upgrade()
    cli = Cli(sandbox_factory(leads=40, seed=5).url, url, copy_mappings(tmp_path / "mappings"))
    base = serve(store, clock=lambda: datetime.now(UTC))
    status, body = _ready(base)
    assert status == 503 and body["reasons"] == ["no cycle has finished yet"]

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise ZeroDivisionError("a bug in matching")

    monkeypatch.setattr("syncagent.pipeline.cycle.match", broken)
    assert cli("sync", "--once").exit_code == 1
    status, body = _ready(base)
    assert status == 503 and "failed" in body["reasons"][0], body
    check = cli("status", "--check")
    assert check.exit_code == 1, "status --check agrees the agent is unhealthy"

    monkeypatch.undo()
    assert cli.json("sync", "--once")["status"] in ("ok", "partial")
    status, body = _ready(base)
    assert cli("status", "--check").exit_code == 0
    assert (status, body) == (200, {"ready": True, "reasons": []})


def test_readyz_is_503_when_the_state_db_cannot_be_read(tmp_path: Path,
                                                        serve: Serve) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'gone.db'}")
    store.upgrade()
    base = serve(store)
    store.dispose()
    (tmp_path / "gone.db").unlink()
    status, body = _ready(base)
    assert status == 503 and "state DB" in body["reasons"][0]
