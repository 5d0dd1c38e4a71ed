"""The one exception tree of syncagent.

Every error the agent raises on purpose derives from :class:`SyncAgentError`, carries
structured ``fields`` (for logs and the state DB) and a ``hint`` telling the user what
to do. Vendor exceptions are translated into these only at the connector boundary
(``connectors/*/errors.py``), so the pipeline never sees an SDK class.

Secrets must never be put into a message, a field or a hint.
"""

from __future__ import annotations

from typing import Any


class SyncAgentError(Exception):
    """Root of every error syncagent raises deliberately."""

    default_hint = "See the log for details."

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        self.fields: dict[str, Any] = fields

    def __str__(self) -> str:
        return self.message

    def as_dict(self, **context: Any) -> dict[str, Any]:
        """Structured form for logs, JSON output and the state DB.

        ``context`` adds what the caller knows (the system, the stream); the error's own fields
        win where both name the same key, so a caller can never collide with them.
        """
        return {**context, **self.fields, "error": type(self).__name__,
                "message": self.message, "hint": self.hint}


class ConfigError(SyncAgentError):
    """A setting, a config file, a mapping file or a CLI argument is wrong."""

    default_hint = "Fix the named setting or file and start again."


class RetryableError(SyncAgentError):
    """A failure that is expected to pass: try the same call again later."""

    default_hint = ("The agent retries this by itself; if it keeps happening, check the "
                    "network and the remote service's status page.")

    def __init__(self, message: str, *, retry_after: float | None = None,
                 hint: str | None = None, **fields: Any) -> None:
        super().__init__(message, hint=hint, **fields)
        self.retry_after = retry_after


class RateLimited(RetryableError):
    """The remote API asked us to slow down (HTTP 429, HubSpot ten-secondly/secondly)."""


class ServerError(RetryableError):
    """HTTP 5xx from the remote API."""


class RemoteTimeout(RetryableError):
    """The call timed out or the connection was reset before an answer came."""


class LockContention(RetryableError):
    """The remote record was locked (Salesforce UNABLE_TO_LOCK_ROW, HubSpot 423)."""


class Interrupted(RetryableError):
    """The agent was asked to stop (SIGTERM, lease lost) while a call waited to be retried or
    rate-limited: the work is left where it was, as a retryable failure, and picked up by the
    next cycle or the next agent."""

    default_hint = "Nothing to do: the agent is stopping; the next run resumes this work."


class FatalError(SyncAgentError):
    """Retrying will not help until a person or the clock changes something."""

    default_hint = "The agent stopped this work; fix the cause and run again."


class AuthError(FatalError):
    """Credentials were refused."""

    default_hint = "Check the credentials in syncagent.yaml or SYNCAGENT_* variables."


class QuotaExhausted(FatalError):
    """The remote daily API allocation is used up (SF REQUEST_LIMIT_EXCEEDED, HubSpot DAILY)."""

    default_hint = "Wait for the daily allocation to reset; cursors are kept, nothing is lost."


class BudgetExhausted(FatalError):
    """The agent's own share of the daily allocation is used up; it stopped before the API did."""

    default_hint = ("Raise the budget share in the settings or wait for the rolling window; "
                    "the next run resumes where this one stopped.")


class RecordRejected(SyncAgentError):
    """The API refused one record for a reason retrying will not fix (validation, deleted...)."""

    default_hint = "Fix the record or the mapping, then retry it with `syncagent errors --retry`."

    def __init__(self, message: str, *, system: str, object_name: str, record_id: str | None,
                 code: str, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message, hint=hint, system=system, object=object_name,
                         record_id=record_id, code=code, **fields)
        self.system = system
        self.object_name = object_name
        self.record_id = record_id
        self.code = code


#: API codes meaning the remote's schema or permissions do not fit the mappings: every cycle
#: would fail the same way until a person fixes a field, a permission or a scope.
SCHEMA_CODES = frozenset({"INVALID_FIELD", "INVALID_TYPE", "INVALID_SESSION_ID_SCOPE",
                          "INSUFFICIENT_ACCESS", "MISSING_SCOPES", "API_DISABLED_FOR_ORG"})


def stops_system(error: BaseException) -> bool:
    """Errors after which a system's work this cycle is pointless, but no record is at fault:
    its claimed writes go back to the queue without counting an attempt."""
    return isinstance(error, AuthError | QuotaExhausted | BudgetExhausted)


def needs_a_person(error: BaseException) -> bool:
    """Failures no retry can fix (credentials, quota, schema): `run` stops after the cycle."""
    if isinstance(error, AuthError | QuotaExhausted | ConfigError):
        return True
    if getattr(error, "needs_a_person", False):  # e.g. a corrupt or read-only state DB
        return True
    if not isinstance(error, FatalError):
        return False
    # `missing`: the fields a remote lacks for the agent's writes (the pre-flight check)
    return (error.fields.get("code") in (*SCHEMA_CODES, "TLS")
            or bool(error.fields.get("missing")))
