"""requests plumbing that points the unmodified simple-salesforce at the sandbox.

simple-salesforce builds every login URL as ``https://{domain}.salesforce.com/...`` (SOAP
login, OAuth password, JWT bearer, client credentials); after login it uses the
``instance_url`` the server returned. ``SandboxAdapter`` rewrites a login host to the sandbox
and pins the sandbox CA.

Why pin the CA in the adapter rather than set ``session.verify``: with ``trust_env`` (the
default) requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` from the environment
override ``session.verify`` (it only keeps a per-request ``verify``), so a session-level CA
silently stops working on machines that export those variables.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")


class SandboxAdapter(HTTPAdapter):
    """Sends requests to the sandbox's scheme and host:port, verifying with its CA."""

    def __init__(self, base_url: str, ca_cert: str) -> None:
        super().__init__()
        parts = urlsplit(base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._ca_cert = ca_cert

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: float | tuple[float | None, float | None] | None = None,
             verify: bool | str = True, cert: str | tuple[str, str] | None = None,
             proxies: dict[str, str] | None = None) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query,
                                  parts.fragment))
        return super().send(request, stream=stream, timeout=timeout, verify=self._ca_cert,
                            cert=cert, proxies={})


SandboxLoginAdapter = SandboxAdapter


def sandbox_session(base_url: str, ca_cert: str,
                    login_hosts: tuple[str, ...] = LOGIN_HOSTS) -> requests.Session:
    """A session for ``Salesforce(session=...)``: login hosts and the sandbox itself go to the
    sandbox with its CA pinned.

    For client credentials (Salesforce requires a My Domain for it) add the My Domain host,
    e.g. ``login_hosts=(*LOGIN_HOSTS, "syncagent-sandbox.my.salesforce.com")`` with
    ``domain="syncagent-sandbox.my"``.
    """
    session = requests.Session()
    session.verify = ca_cert
    adapter = SandboxAdapter(base_url, ca_cert)
    session.mount(base_url.rstrip("/") + "/", adapter)
    for host in login_hosts:
        session.mount(f"https://{host}/", adapter)
    return session
