"""Helpers: connectors wired to a running sandbox through the real client libraries."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

from pydantic import SecretStr

from connectors.base import StreamSpec
from connectors.budget import DailyBudget, RateLimiter
from connectors.hubspot.client import SEARCH_WINDOW, WINDOW_MARGIN, HubSpotClient
from connectors.hubspot.connector import HubSpotConnector
from connectors.retry import RetryPolicy
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.streams import STREAMS as SF_STREAMS
from syncagent.sandbox.server import RunningSandbox
from syncagent.settings import HubSpotSettings, SalesforceSettings


def fast_retry(attempts: int = 8) -> RetryPolicy:
    """Real sleeps, but short: the sandbox's Retry-After of 1 s would make tests slow."""
    return RetryPolicy(attempts=attempts, base_seconds=0.01, max_backoff_seconds=0.05,
                       max_retry_after_seconds=0.05, sleep=time.sleep, rng=random.Random(5))


def sf_settings(sandbox: RunningSandbox, **overrides: Any) -> SalesforceSettings:
    info = sandbox.info["salesforce"]
    values: dict[str, Any] = {
        "auth": "password", "login_url": sandbox.url, "username": info["username"],
        "password": SecretStr(info["password"]),
        "security_token": SecretStr(info["security_token"]), "timeout_seconds": 5.0}
    values.update(overrides)
    return SalesforceSettings(**values)


def sf_connector(sandbox: RunningSandbox, *, lookback: int = 300,
                 retry: RetryPolicy | None = None, budget: DailyBudget | None = None,
                 streams: tuple[StreamSpec, ...] = SF_STREAMS,
                 **overrides: Any) -> SalesforceConnector:
    settings = sf_settings(sandbox, **overrides)
    client = SalesforceClient(settings, ca_bundle=sandbox.ca_cert, retry=retry or fast_retry(),
                              budget=budget)
    return SalesforceConnector(client, lookback=timedelta(seconds=lookback), stream_table=streams)


def hs_connector(sandbox: RunningSandbox, *, lookback: int = 120,
                 retry: RetryPolicy | None = None, searches_per_second: int = 4,
                 **overrides: Any) -> HubSpotConnector:
    info = sandbox.info["hubspot"]
    values: dict[str, Any] = {"base_url": info["base_url"],
                              "access_token": SecretStr(info["access_token"]),
                              "timeout_seconds": 5.0}
    values.update(overrides)
    settings = HubSpotSettings(**values)
    client = HubSpotClient(settings, ca_bundle=sandbox.ca_cert, retry=retry or fast_retry(),
                           search_limiter=RateLimiter(searches_per_second,
                                                      SEARCH_WINDOW + WINDOW_MARGIN))
    return HubSpotConnector(client, lookback=timedelta(seconds=lookback))
