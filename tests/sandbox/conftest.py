"""Helpers for sandbox tests: SDK clients pointed at a running sandbox, plain HTTPS calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from hubspot import HubSpot

from syncagent.sandbox.common import SandboxConfig
from syncagent.sandbox.server import RunningSandbox, start_sandbox


def hubspot_client(running: RunningSandbox) -> HubSpot:
    """The unmodified hubspot-api-client, trusting the sandbox CA."""
    return HubSpot(access_token=running.info["hubspot"]["access_token"], host=running.url,
                   ssl_ca_cert=running.ca_cert)


def hs_call(running: RunningSandbox, method: str, path: str, body: Any = None,
            **kwargs: Any) -> requests.Response:
    """A raw HubSpot call (for headers and bodies the SDK hides)."""
    headers = {"Authorization": f"Bearer {running.info['hubspot']['access_token']}"}
    return requests.request(method, running.url + path, json=body, headers=headers,
                            verify=running.ca_cert, timeout=kwargs.pop("timeout", 30), **kwargs)


def fresh_org(leads: int, seed: int) -> Iterator[RunningSandbox]:
    """A running sandbox of the fresh profile, stopped when the generator closes."""
    running = start_sandbox(leads=leads, seed=seed, config=SandboxConfig(profile="fresh"))
    try:
        yield running
    finally:
        running.stop()


def reset_around(running: RunningSandbox) -> Iterator[RunningSandbox]:
    """The sandbox, reset before and after the test that changes it."""
    running.reset()
    yield running
    running.reset()
