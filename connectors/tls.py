"""TLS failures are not transient: an untrusted or mismatched certificate fails the same way on
every retry, so both connectors turn them into a FatalError naming the host and the setting
that fixes it (``ca_bundle``), instead of six retries labelled "no answer".

Both stacks wrap the ``ssl`` module's error differently (requests: ``SSLError`` inside
``ConnectionError``; urllib3: ``SSLError`` possibly inside ``MaxRetryError.reason``), so the
cause chain is walked rather than matched by class.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlparse

from syncagent.errors import FatalError

_MAX_DEPTH = 8  # cause chains are short; the bound only guards against a cycle


def _links(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and what vendor wrappers hold (``reason``,
    the first argument)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < _MAX_DEPTH:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None),
                  *(a for a in current.args[:1] if isinstance(a, BaseException))]
        todo.extend(n for n in nested if isinstance(n, BaseException))
    return seen


def is_tls_failure(exc: BaseException) -> bool:
    """Whether a transport failure was the TLS handshake (certificate, protocol, hostname)."""
    return any(isinstance(link, ssl.SSLError | ssl.CertificateError)
               or type(link).__name__ == "SSLError" for link in _links(exc))


def _host(exc: BaseException, fallback: str) -> str:
    for link in _links(exc):
        request = getattr(link, "request", None)
        url = getattr(request, "url", None)
        if isinstance(url, str) and urlparse(url).hostname:
            return str(urlparse(url).hostname)
    return fallback


def tls_error(exc: BaseException, *, system: str, operation: str,
              host_setting: str) -> FatalError | None:
    """A FatalError for a TLS failure (None for any other error). No retry can fix a
    certificate the agent does not trust, so none is attempted."""
    if not is_tls_failure(exc):
        return None
    host = _host(exc, host_setting)
    return FatalError(
        f"{system} {operation}: TLS handshake with {host} failed (certificate not trusted, "
        "expired or for another host)",
        hint=f"Check {host_setting} names the right host; if a proxy or a private CA signs its "
             "certificate, set ca_bundle (SYNCAGENT_CA_BUNDLE) to that CA's PEM file.",
        system=system, operation=operation, code="TLS")
