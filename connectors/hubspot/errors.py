"""HubSpot failures -> syncagent errors, in one place.

``ApiException`` is a different class in every SDK sub-package, so failures are classified by
``.status`` and the body's ``policyName``/``category``, never by class. Transport failures
(urllib3 timeouts, resets) are RemoteTimeout.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3

from connectors.network import unreachable
from connectors.retry import parse_retry_after
from syncagent.errors import (
    AuthError,
    FatalError,
    LockContention,
    QuotaExhausted,
    RateLimited,
    RemoteTimeout,
    ServerError,
    SyncAgentError,
)

SYSTEM = "hubspot"

#: waits HubSpot's own SDKs use when a 429 names its policy but sends no Retry-After
POLICY_WAIT_SECONDS = {"TEN_SECONDLY_ROLLING": 10.0, "SECONDLY": 1.0}
LOCKED_WAIT_SECONDS = 2.0


def parse_body(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {"message": body[:500]}
    return body if isinstance(body, dict) else {"message": str(body)[:500]}


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    return str(value) if value is not None else None


def classify(status: int, body: Any, headers: Any, *, operation: str) -> SyncAgentError:
    """One failed HubSpot answer -> the syncagent error to raise."""
    data = parse_body(body)
    message = str(data.get("message") or "")[:500]
    category = data.get("category") or data.get("errorType")
    policy = data.get("policyName")
    text = f"hubspot {operation}: HTTP {status} {policy or category or ''} {message}".strip()
    fields: dict[str, Any] = {"system": SYSTEM, "operation": operation, "status": status,
                              "code": policy or category}
    if status == 429:
        if policy == "DAILY":
            return QuotaExhausted(text, hint="HubSpot's daily API limit is used up; the agent "
                                             "resumes after the reset (midnight in the portal's "
                                             "time zone). Cursors are kept.", **fields)
        retry_after = parse_retry_after(_header(headers, "Retry-After"))
        if retry_after is None:
            retry_after = POLICY_WAIT_SECONDS.get(policy or "")
        if retry_after is None and "secondly" in message.lower():
            retry_after = POLICY_WAIT_SECONDS["SECONDLY"]
        return RateLimited(text, retry_after=retry_after, **fields)
    if status == 423:
        return LockContention(text, retry_after=LOCKED_WAIT_SECONDS, **fields)
    if status >= 500:
        return ServerError(text, retry_after=parse_retry_after(_header(headers, "Retry-After")),
                           **fields)
    if status == 401:
        return AuthError(text, hint="Check hubspot.access_token (a private-app token with the "
                                    "crm.objects.contacts scopes).", **fields)
    if status == 0:
        return FatalError(text, hint="TLS or connection set-up failed; if a proxy inspects "
                                     "TLS, set ca_bundle to its CA certificate.", **fields)
    return FatalError(text, **fields)


def translate(exc: BaseException, *, operation: str) -> SyncAgentError:
    """An SDK ApiException or a urllib3 transport error -> a syncagent error."""
    if isinstance(exc, SyncAgentError):
        return exc
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return classify(status, getattr(exc, "body", None) or getattr(exc, "reason", ""),
                        getattr(exc, "headers", None), operation=operation)
    failed = unreachable(exc, system=SYSTEM, operation=operation, setting="hubspot.base_url")
    if failed is not None:
        return failed
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return RemoteTimeout(f"hubspot {operation}: {type(exc).__name__} (no answer)",
                             system=SYSTEM, operation=operation)
    return FatalError(f"hubspot {operation}: {type(exc).__name__}: {exc}", system=SYSTEM,
                      operation=operation)
