"""Salesforce failures -> syncagent errors, in one table.

Classified by HTTP status and Salesforce ``errorCode``, never by simple-salesforce's class
(it maps 429 and every 5xx to one ``SalesforceGeneralError``). Record-level codes from sObject
Collections results are classified by :func:`record_status`.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from connectors.base import WriteStatus
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
    RetryableError,
    ServerError,
    SyncAgentError,
)

SYSTEM = "salesforce"

#: errorCode -> error class; checked before the status table.
_BY_CODE: dict[str, type[SyncAgentError]] = {
    "REQUEST_LIMIT_EXCEEDED": QuotaExhausted,
    "TOTAL_REQUESTS_LIMIT_EXCEEDED": QuotaExhausted,
    "INVALID_SESSION_ID": AuthError,
    "INVALID_AUTH_HEADER": AuthError,
    "INVALID_LOGIN": AuthError,
    "INVALID_GRANT": AuthError,
    "invalid_grant": AuthError,
    "invalid_client": AuthError,
    "invalid_client_id": AuthError,
    "UNABLE_TO_LOCK_ROW": LockContention,
    "ALL_OR_NONE_OPERATION_ROLLED_BACK": RetryableError,
    "SERVER_UNAVAILABLE": ServerError,
    "REQUEST_RUNNING_TOO_LONG": RemoteTimeout,
    "QUERY_TIMEOUT": RemoteTimeout,
    "CONCURRENT_REQUESTS_LIMIT_EXCEEDED": RateLimited,
}

#: HTTP status -> error class, when the code is not in the table above.
_BY_STATUS: dict[int, type[SyncAgentError]] = {
    401: AuthError,
    403: FatalError,
    404: FatalError,
    414: FatalError,
    423: LockContention,
    429: RateLimited,
    431: FatalError,
}

#: record-level codes (sObject Collections results) that a later retry can fix
RETRYABLE_RECORD_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW",
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "SERVER_UNAVAILABLE",
    "REQUEST_RUNNING_TOO_LONG",
})

_HINTS: dict[type[SyncAgentError], str] = {
    QuotaExhausted: "The org's daily API allocation is used up; the agent resumes after the "
                    "rolling 24 h window frees calls. Cursors are kept.",
    AuthError: "Check the Salesforce credentials (salesforce.* settings) and that the "
               "integration user is active.",
}


def record_status(code: str) -> WriteStatus:
    """'retryable' or 'rejected' for one record-level errorCode."""
    return "retryable" if code in RETRYABLE_RECORD_CODES else "rejected"


def first_error(content: Any) -> tuple[str | None, str]:
    """(errorCode, message) from a Salesforce error body (a JSON list, a dict, or text)."""
    body = content
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return None, text[:500]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("errorCode"), str(body[0].get("message", ""))
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error")
        message = body.get("message") or body.get("error_description") or ""
        return code, str(message)
    return None, str(body)[:500]


def classify(status: int, content: Any, *, operation: str,
             headers: Any = None) -> SyncAgentError:
    """One failed HTTP response -> the syncagent error to raise."""
    code, message = first_error(content)
    cls = _BY_CODE.get(code or "")
    if status == 429 or (code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in message.lower()):
        # too many requests at once (not the daily allocation): slow down and retry
        cls = RateLimited
    if cls is None:
        cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else FatalError
    text = f"salesforce {operation}: HTTP {status} {code or ''} {message}".strip()
    fields: dict[str, Any] = {"system": SYSTEM, "operation": operation, "status": status,
                              "code": code}
    hint = _HINTS.get(cls)
    if issubclass(cls, RetryableError):
        retry_after = parse_retry_after(headers.get("Retry-After")) if headers else None
        return cls(text, retry_after=retry_after, hint=hint, **fields)
    return cls(text, hint=hint, **fields)


def translate(exc: BaseException, *, operation: str) -> SyncAgentError:
    """A simple-salesforce or requests exception -> a syncagent error."""
    if isinstance(exc, SyncAgentError):
        return exc
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return classify(status, getattr(exc, "content", ""), operation=operation)
    tls = tls_error(exc, system=SYSTEM, operation=operation,
                    host_setting="salesforce.instance_url")
    if tls is not None:
        return tls
    if isinstance(exc, requests.ConnectionError):
        failed = unreachable(exc, system=SYSTEM, operation=operation,
                             setting="salesforce.instance_url (or the instance the login "
                                     "returned)")
        if failed is not None:
            return failed
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return RemoteTimeout(f"salesforce {operation}: {type(exc).__name__} (no answer)",
                             system=SYSTEM, operation=operation)
    if isinstance(exc, requests.RequestException):
        return RemoteTimeout(f"salesforce {operation}: {type(exc).__name__}",
                             system=SYSTEM, operation=operation)
    code = getattr(exc, "code", None)          # SalesforceAuthenticationFailed
    if code is not None:
        return AuthError(f"salesforce login refused: {code} {getattr(exc, 'message', '')}",
                         hint=_HINTS[AuthError], system=SYSTEM, code=str(code))
    return FatalError(f"salesforce {operation}: {type(exc).__name__}: {exc}",
                      system=SYSTEM, operation=operation)
