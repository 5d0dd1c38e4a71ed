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
from connectors.tls import tls_error
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
#: what each private-app scope switches on in the agent (for error messages and hints)
SCOPE_FEATURES = {
    "crm.objects.owners.read": "owner sync (HubSpot owners matched to Salesforce users)",
    "crm.lists.read": "nurture list membership",
    "crm.lists.write": "nurture list membership",
    "crm.objects.contacts.read": "reading contacts and their activities (and the agent's "
                                 "tasks)",
    "crm.objects.contacts.write": "writing grades, scores and stages to contacts, and "
                                  "creating alert and SLA tasks",
    "crm.schemas.contacts.read": "reading contact properties (Salesforce id write-back)",
    "crm.schemas.contacts.write": "creating the agent's contact properties",
}
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


class Refused(FatalError):
    """A whole call HubSpot refused (400/409), e.g. a batch with one invalid input. ``body``
    keeps HubSpot's answer (it may name the bad inputs); it stays out of ``fields`` so record
    values never reach logs through ``as_dict``."""

    def __init__(self, message: str, *, body: dict[str, Any], **fields: Any) -> None:
        super().__init__(message, **fields)
        self.body = body

    def named_ids(self) -> set[str]:
        """Inputs the answer names in ``errors[].context.ids``."""
        return {str(i) for e in self.body.get("errors") or [] if isinstance(e, dict)
                for i in (e.get("context") or {}).get("ids") or []}

    def message_for(self, key: str | None) -> str:
        """HubSpot's words about one input: the problems that name it (or, when none name
        any input, all of them), each as "property: message"; else the call's message."""
        entries = [e for e in self.body.get("errors") or [] if isinstance(e, dict)]
        named = [e for e in entries
                 if key is not None and key in {str(i) for i in
                                                (e.get("context") or {}).get("ids") or []}]
        if not named and not any((e.get("context") or {}).get("ids") for e in entries):
            named = entries
        parts = []
        for err in named:
            prop = ",".join((err.get("context") or {}).get("propertyName") or [])
            text = str(err.get("message") or "")[:200]
            parts.append(f"{prop}: {text}" if prop else text)
        return ("hubspot refused: " + "; ".join(parts))[:500] if parts else self.message

    def code_for(self, key: str | None) -> str:
        """The problem code for one input (e.g. INVALID_EMAIL), else the call's category."""
        for err in self.body.get("errors") or []:
            ids = {str(i) for i in (err.get("context") or {}).get("ids") or []}
            if err.get("code") and (key is None or not ids or key in ids):
                return str(err["code"])
        embedded = _embedded_problems(str(self.body.get("message") or ""))
        if embedded:
            return str(embedded[0].get("error") or "VALIDATION_ERROR")
        return str(self.fields.get("code") or "VALIDATION_ERROR")


class MissingScopes(FatalError):
    """The private app lacks a scope: only the feature that needs it stops."""

    def __init__(self, message: str, *, scopes: tuple[str, ...], **fields: Any) -> None:
        super().__init__(message, **fields)
        self.scopes = scopes


def _embedded_problems(message: str) -> list[dict[str, Any]]:
    """The JSON list in "Property values were not valid: [...]" (empty when absent)."""
    start = message.find("[")
    if "not valid" not in message or start < 0:
        return []
    try:
        found = json.loads(message[start:])
    except ValueError:
        return []
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def required_scopes(data: dict[str, Any]) -> tuple[str, ...]:
    """Scopes a MISSING_SCOPES answer asks for (granular names first, legacy ones else)."""
    found: list[str] = []
    for err in data.get("errors") or []:
        context = (err or {}).get("context") or {}
        for key in ("requiredGranularScopes", "requiredScopes"):
            found.extend(str(s) for s in context.get(key) or [])
    return tuple(dict.fromkeys(found))


def _missing_scopes(data: dict[str, Any], operation: str,
                    fields: dict[str, Any]) -> MissingScopes:
    scopes = required_scopes(data) or ("unknown scope",)
    features = sorted({SCOPE_FEATURES.get(s, operation) for s in scopes})
    text = (f"hubspot {operation}: the private app lacks the scope {' or '.join(scopes)}; "
            f"{' and '.join(features)} is off until it is granted")
    return MissingScopes(text, scopes=scopes, hint="In HubSpot: Settings > Integrations > "
                         f"Private Apps > your app > Scopes: add {', '.join(scopes)}, then "
                         "paste the token again if HubSpot rotated it.", **fields)


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
    if status == 403 and category == "MISSING_SCOPES":
        return _missing_scopes(data, operation, fields)
    if status in (400, 409):
        return Refused(text, body=data, **fields)
    if status == 401:
        return AuthError(text, hint="Check hubspot.access_token (a private-app token; the "
                                    "agent's scopes are listed in docs/connectors.md).",
                         **fields)
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
    tls = tls_error(exc, system=SYSTEM, operation=operation, host_setting="hubspot.base_url")
    if tls is not None:
        return tls
    failed = unreachable(exc, system=SYSTEM, operation=operation, setting="hubspot.base_url")
    if failed is not None:
        return failed
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return RemoteTimeout(f"hubspot {operation}: {type(exc).__name__} (no answer)",
                             system=SYSTEM, operation=operation)
    return FatalError(f"hubspot {operation}: {type(exc).__name__}: {exc}", system=SYSTEM,
                      operation=operation)
