"""HubSpot rate limits and auth, as the unmodified hubspot-api-client sees them."""

from __future__ import annotations

import json

import pytest
from hubspot.crm.contacts import PublicObjectSearchRequest
from hubspot.crm.owners import ApiException as OwnersError

from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.conftest import hs_call, hubspot_client


def test_passing_the_ten_second_limit_is_a_429_with_policy_and_headers(
        sandbox_factory: SandboxFactory) -> None:
    """The (N+1)th call in 10 s answers 429 TEN_SECONDLY_ROLLING; the window rolls."""
    running = sandbox_factory(leads=20, faults={"hubspot_requests_per_10s": 4})
    hs = hubspot_client(running)
    remaining = [hs_call(running, "GET", "/crm/v3/owners/?limit=1").headers[
        "X-HubSpot-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["3", "2", "1"]
    hs.crm.owners.owners_api.get_page(limit=1)
    with pytest.raises(OwnersError) as caught:
        hs.crm.owners.owners_api.get_page(limit=1)
    error = caught.value
    body = json.loads(error.body)
    assert error.status == 429
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert error.headers["X-HubSpot-RateLimit-Max"] == "4"
    assert error.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert error.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(error.headers["X-HubSpot-RateLimit-Daily-Remaining"]) > 0
    running.ctx.clock.advance(10)
    assert hs.crm.owners.owners_api.get_page(limit=1).results


def test_search_has_its_own_per_second_limit_and_no_rate_headers(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=20, faults={"hubspot_searches_per_second": 2})
    search = {"limit": 1}
    first = hs_call(running, "POST", "/crm/v3/objects/contacts/search", search)
    assert first.status_code == 200
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in first.headers)
    assert hs_call(running, "POST", "/crm/v3/objects/contacts/search", search).ok
    hs = hubspot_client(running)
    from hubspot.crm.contacts import ApiException

    with pytest.raises(ApiException) as caught:
        hs.crm.contacts.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=1))
    assert caught.value.status == 429
    assert json.loads(caught.value.body)["policyName"] == "SECONDLY"
    assert hs_call(running, "GET", "/crm/v3/owners/").ok   # other calls are not held back


def test_daily_limit_is_a_429_daily(sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=20, faults={"hubspot_daily_limit": 2})
    assert hs_call(running, "GET", "/crm/v3/owners/").ok
    last = hs_call(running, "GET", "/crm/v3/owners/")
    assert last.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    refused = hs_call(running, "GET", "/crm/v3/owners/")
    assert refused.status_code == 429 and refused.json()["policyName"] == "DAILY"
    assert running.stats()["daily_usage"]["hubspot"] == {"used": 2, "max": 2}


def test_missing_or_wrong_token_is_401(sandbox_factory: SandboxFactory) -> None:
    from hubspot import HubSpot

    running = sandbox_factory(leads=20)
    client = HubSpot(access_token="pat-na1-wrong", host=running.url,
                     ssl_ca_cert=running.ca_cert)
    with pytest.raises(OwnersError) as caught:
        client.crm.owners.owners_api.get_page()
    assert caught.value.status == 401
    assert json.loads(caught.value.body)["category"] == "INVALID_AUTHENTICATION"
