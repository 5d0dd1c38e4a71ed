"""Salesforce sandbox: every login flow of the unmodified simple-salesforce, session expiry,
and API usage accounting (Sforce-Limit-Info, /limits, the daily quota)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)

from syncagent.sandbox.salesforce import LOGIN_HOSTS, sandbox_session
from syncagent.sandbox.server import RunningSandbox

MY_DOMAIN = "syncagent-sandbox.my"


@pytest.fixture
def fresh(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    """The shared sandbox, reset before and after (restores the start fault profile)."""
    sandbox.reset()
    yield sandbox
    sandbox.reset()


def soap_client(running: RunningSandbox, **overrides: str) -> Salesforce:
    info = {**running.info["salesforce"], **overrides}
    return Salesforce(username=info["username"], password=info["password"],
                      security_token=info["security_token"],
                      session=sandbox_session(running.url, running.ca_cert))


def test_soap_login_with_security_token_reaches_the_sandbox(sandbox: RunningSandbox) -> None:
    sf = soap_client(sandbox)
    assert sf.sf_instance == sandbox.url.removeprefix("https://")
    assert sf.query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1


def test_soap_login_with_wrong_password_is_an_invalid_login_fault(
        sandbox: RunningSandbox) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        soap_client(sandbox, password="wrong")
    assert caught.value.code == "INVALID_LOGIN"
    assert "Invalid username, password, security token" in caught.value.auth_message


def test_soap_login_via_scratch_url_needs_no_adapter(sandbox: RunningSandbox) -> None:
    info = sandbox.info["salesforce"]
    session = requests.Session()
    session.trust_env = False     # else REQUESTS_CA_BUNDLE overrides session.verify
    session.verify = sandbox.ca_cert
    session_id, instance = SalesforceLogin(
        username=info["username"], password=info["password"],
        security_token=info["security_token"], scratch_url=sandbox.url, session=session)
    sf = Salesforce(session_id=session_id, instance=instance, session=session)
    assert instance == sandbox.url.removeprefix("https://")
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] > 0


def test_oauth_password_flow(sandbox: RunningSandbox) -> None:
    info = sandbox.info["salesforce"]
    sf = Salesforce(username=info["username"], password=info["password"],
                    consumer_key=info["consumer_key"], consumer_secret=info["consumer_secret"],
                    session=sandbox_session(sandbox.url, sandbox.ca_cert))
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] > 0


def test_oauth_password_flow_rejects_a_wrong_secret(sandbox: RunningSandbox) -> None:
    info = sandbox.info["salesforce"]
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(username=info["username"], password=info["password"],
                   consumer_key=info["consumer_key"], consumer_secret="nope",
                   session=sandbox_session(sandbox.url, sandbox.ca_cert))
    assert caught.value.code == "invalid_client"


def test_jwt_bearer_flow_is_verified_with_the_sandbox_key(sandbox: RunningSandbox) -> None:
    info = sandbox.info["salesforce"]
    sf = Salesforce(username=info["username"], consumer_key=info["consumer_key"],
                    privatekey_file=info["jwt_private_key"],
                    session=sandbox_session(sandbox.url, sandbox.ca_cert))
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] > 0


def test_jwt_bearer_flow_rejects_an_unknown_subject(sandbox: RunningSandbox) -> None:
    info = sandbox.info["salesforce"]
    # Salesforce answers "user hasn't approved this consumer"; the library then warns.
    with pytest.raises(SalesforceAuthenticationFailed) as caught, pytest.warns(UserWarning):
        Salesforce(username="someone@else.example.com", consumer_key=info["consumer_key"],
                   privatekey_file=info["jwt_private_key"],
                   session=sandbox_session(sandbox.url, sandbox.ca_cert))
    assert caught.value.code == "invalid_grant"


def test_client_credentials_flow_through_a_my_domain_host(sandbox: RunningSandbox) -> None:
    info = sandbox.info["salesforce"]
    session = sandbox_session(sandbox.url, sandbox.ca_cert,
                              login_hosts=(*LOGIN_HOSTS, f"{MY_DOMAIN}.salesforce.com"))
    sf = Salesforce(consumer_key=info["consumer_key"], consumer_secret=info["consumer_secret"],
                    domain=MY_DOMAIN, session=session)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0


def test_direct_session_id_and_instance_url(sandbox: RunningSandbox) -> None:
    info = sandbox.info["salesforce"]
    session = requests.Session()
    session.trust_env = False     # else REQUESTS_CA_BUNDLE overrides session.verify
    session.verify = sandbox.ca_cert
    sf = Salesforce(session_id=info["session_id"], instance_url=info["instance_url"],
                    session=session)
    assert sf.query("SELECT Id FROM Lead LIMIT 2")["totalSize"] == 2


def test_expired_session_is_a_401_list_and_password_clients_log_in_again(
        fresh: RunningSandbox) -> None:
    fresh.set_faults({"session_expiry_after_calls": 2})
    info = fresh.info["salesforce"]
    session = requests.Session()
    session.trust_env = False
    session.verify = fresh.ca_cert
    direct = Salesforce(session_id=info["session_id"], instance_url=info["instance_url"],
                        session=session)
    direct.query("SELECT Id FROM Lead LIMIT 1")
    direct.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(SalesforceExpiredSession) as caught:
        direct.query("SELECT Id FROM Lead LIMIT 1")
    assert caught.value.status == 401
    assert caught.value.content == [{"message": "Session expired or invalid",
                                     "errorCode": "INVALID_SESSION_ID"}]

    sf = soap_client(fresh)
    first_session = sf.session_id
    for _ in range(5):      # simple-salesforce re-logs in on INVALID_SESSION_ID
        assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1
    assert sf.session_id != first_session


def test_limit_info_counts_each_call_and_logins_do_not_count(fresh: RunningSandbox) -> None:
    sf = soap_client(fresh)
    soap_client(fresh)                      # a second login: not an API call
    sf.query("SELECT Id FROM Lead LIMIT 1")
    first = sf.api_usage["api-usage"]
    sf.describe()
    sf.query("SELECT Id FROM Lead LIMIT 1")
    assert sf.api_usage["api-usage"].used == first.used + 2
    assert first.used == 1 and first.total == 100_000
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 100_000, "Remaining": 100_000 - 4}


def test_daily_quota_exhausted_is_a_403_request_limit_exceeded(fresh: RunningSandbox) -> None:
    fresh.set_faults({"salesforce_daily_quota": 3})
    sf = soap_client(fresh)
    for _ in range(3):
        sf.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert caught.value.status == 403
    assert caught.value.content == [{"message": "TotalRequests Limit exceeded.",
                                     "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
