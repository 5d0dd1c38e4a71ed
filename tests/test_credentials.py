"""Credentials checked before any call; unreachable hosts name the host and the setting."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import requests
import urllib3

from connectors.network import UnreachableHost, unreachable
from syncagent.credentials import credential_problems, require_credentials
from syncagent.errors import ConfigError, RetryableError
from syncagent.settings import Settings, load_settings
from tests.shown import shown


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: object) -> Settings:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("SYNCAGENT_"):
            monkeypatch.delenv(name)
    return load_settings(None, **overrides)


def test_nothing_set_lists_both_systems_at_once(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    problems = credential_problems(_settings(tmp_path, monkeypatch,
                                             salesforce={"auth": "password"}))
    text = "; ".join(problems)
    for name in ("salesforce.username", "salesforce.password", "salesforce.security_token",
                 "hubspot.access_token"):
        assert name in text
    assert "SYNCAGENT_SALESFORCE__PASSWORD" in text


def test_each_login_flow_asks_for_its_own_settings(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, monkeypatch, salesforce={
        "auth": "jwt", "username": "agent@example.com", "consumer_key": "ck",
        "private_key_file": str(tmp_path / "missing.pem")},
        hubspot={"access_token": "pat-na1-x"})
    assert credential_problems(settings) == [
        f"salesforce.private_key_file: no file at {tmp_path / 'missing.pem'}"]


def test_malformed_values_are_named_and_secrets_never_shown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, monkeypatch, salesforce={
        "auth": "password", "username": "agent", "password": "hunter2-secret",
        "security_token": "tok-secret",
        "instance_url": "http://acme.my.salesforce.com"},
        hubspot={"access_token": "pat na1 secret", "base_url": "api.hubapi.com"})
    with pytest.raises(ConfigError) as caught:
        require_credentials(settings)
    message = shown(caught.value)
    for expected in ("salesforce.username", "salesforce.instance_url", "hubspot.access_token",
                     "hubspot.base_url"):
        assert expected in message
    for secret in ("hunter2-secret", "tok-secret", "pat na1 secret"):
        assert secret not in message


def test_a_name_that_does_not_resolve_names_the_host_and_setting() -> None:
    with pytest.raises(requests.ConnectionError) as caught:
        requests.get("https://crm.no-such-host.invalid/x", timeout=5)
    error = unreachable(caught.value, system="hubspot", operation="search",
                        setting="hubspot.base_url")
    assert isinstance(error, UnreachableHost) and not isinstance(error, RetryableError)
    assert "crm.no-such-host.invalid" in error.message and "DNS" in error.message
    assert "hubspot.base_url" in error.hint and "nothing to do" not in shown(error)


def test_a_refused_connection_names_the_host_and_setting() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]   # bound, not listening: connections are refused
        pool = urllib3.PoolManager(retries=False)
        with pytest.raises(urllib3.exceptions.HTTPError) as caught:
            pool.request("GET", f"http://127.0.0.1:{port}/")
    error = unreachable(caught.value, system="salesforce", operation="query",
                        setting="salesforce.instance_url")
    assert error is not None and "refused" in error.message
    assert "127.0.0.1" in error.message and "salesforce.instance_url" in error.hint


def test_a_timeout_is_not_mistaken_for_an_unreachable_host() -> None:
    assert unreachable(requests.Timeout("read timed out"), system="salesforce",
                       operation="query", setting="x") is None


def test_the_retry_hint_never_says_nothing_to_do() -> None:
    assert "nothing to do" not in shown(RetryableError("x"))
