"""A certificate the agent does not trust fails the same way on every attempt: it is a
FatalError naming the host and the ca_bundle setting, and no retry is spent on it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.connector import HubSpotConnector
from connectors.retry import RetryPolicy
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.connector import SalesforceConnector
from syncagent.errors import FatalError, RetryableError
from syncagent.sandbox.server import RunningSandbox
from syncagent.settings import HubSpotSettings
from tests.connectors.conftest import sf_settings


def _counting_policy(seen: list[BaseException]) -> RetryPolicy:
    return RetryPolicy(attempts=4, sleep=lambda _s: None,
                       on_retry=lambda exc, _n, _w: seen.append(exc))


def test_salesforce_untrusted_certificate_is_fatal_with_a_ca_hint(
        sandbox: RunningSandbox) -> None:
    retried: list[BaseException] = []
    client = SalesforceClient(sf_settings(sandbox), ca_bundle=None,  # the sandbox CA unknown
                              retry=_counting_policy(retried))
    connector = SalesforceConnector(client, lookback=timedelta(seconds=60))
    with pytest.raises(FatalError) as caught:
        list(connector.read("Lead", None, cycle_start=sandbox.ctx.clock.now()))
    error = caught.value
    assert not isinstance(error, RetryableError)
    assert error.fields["code"] == "TLS"
    assert "127.0.0.1" in error.message and "ca_bundle" in error.hint
    assert retried == [], "a TLS failure was retried"


def test_hubspot_untrusted_certificate_is_fatal_with_a_ca_hint(sandbox: RunningSandbox) -> None:
    retried: list[BaseException] = []
    info = sandbox.info["hubspot"]
    settings = HubSpotSettings(base_url=info["base_url"], timeout_seconds=5.0,
                               access_token=SecretStr(info["access_token"]))
    client = HubSpotClient(settings, ca_bundle=None, retry=_counting_policy(retried))
    connector = HubSpotConnector(client, lookback=timedelta(seconds=60))
    with pytest.raises(FatalError) as caught:
        list(connector.read("owners", None, cycle_start=sandbox.ctx.clock.now()))
    error = caught.value
    assert not isinstance(error, RetryableError)
    assert error.fields["code"] == "TLS"
    assert "hubspot.base_url" in error.hint and "ca_bundle" in error.hint
    assert retried == [], "a TLS failure was retried"
