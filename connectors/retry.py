"""The one retry policy of the connectors (tenacity).

Vendor errors are first translated into syncagent errors by each connector's ``errors.py``;
this policy then retries exactly the :class:`~syncagent.errors.RetryableError` family:
5xx (ServerError), timeouts and connection resets (RemoteTimeout), 429 (RateLimited) and 423 /
row locks (LockContention). Fatal errors (auth, quota, budget) and rejected records are never
retried here. The SDKs' own retries are off, so this is the only place a call is repeated.

The wait is exponential with full jitter, except when the API said how long to wait
(``Retry-After`` or a known policy window): then that wait is used, plus a little jitter so
parallel agents do not return in lock-step. Attempts are bounded.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
)

from syncagent.errors import Interrupted, LockContention, RateLimited, RetryableError

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """Bounded, jittered, Retry-After-aware retries; ``sleep`` is replaceable in tests."""

    attempts: int = 6
    base_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    #: called with (exception, attempt number, chosen wait) before each sleep; for counting
    on_retry: Callable[[BaseException, int, float], None] | None = None
    #: set when the agent must stop: no wait outlives it, and no new attempt starts
    stop: threading.Event | None = None
    #: the errors retried here (a write whose outcome would be unknown must not be repeated
    #: blindly: see ``refused_only``)
    retry_on: tuple[type[BaseException], ...] = (RetryableError,)

    def refused_only(self) -> RetryPolicy:
        """This policy, retrying only answers that say the call was not carried out (429,
        423): a timeout or a 5xx may hide a write that landed, and its caller looks first."""
        return replace(self, retry_on=(RateLimited, LockContention))

    def wait_seconds(self, state: RetryCallState) -> float:
        """Retry-After when the API gave one, else exponential backoff with full jitter."""
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            jitter = self.rng.uniform(0, min(1.0, 0.1 * max(retry_after, 0.1)))
            return float(min(max(retry_after, 0.0) + jitter, self.max_retry_after_seconds))
        # full jitter (as tenacity's wait_random_exponential), drawn from our own rng so tests
        # and benchmarks are reproducible
        ceiling = self.base_seconds * (2 ** (state.attempt_number - 1))
        return self.rng.uniform(0, min(ceiling, self.max_backoff_seconds))

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.info("connector.retry", attempt=state.attempt_number, wait_seconds=round(wait, 3),
                 error=type(exc).__name__, message=str(exc))
        if self.on_retry is not None and exc is not None:
            self.on_retry(exc, state.attempt_number, wait)

    def pause(self, seconds: float) -> None:
        """Wait, but raise Interrupted as soon as the stop event is set (SIGTERM must not
        wait out a Retry-After of two minutes)."""
        stop = self.stop
        if stop is None:
            self.sleep(seconds)
            return
        if stop.wait(max(seconds, 0.0)):
            raise Interrupted("stopped while waiting to retry a call")

    def check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Interrupted("stopped before the next call")

    def retrying(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self.wait_seconds,
            retry=(retry_if_exception_type(self.retry_on)
                   & retry_if_not_exception_type(Interrupted)),
            sleep=self.pause,
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def longest(self, timeout: float) -> float:
        """Seconds a call under this policy may take: every attempt timing out, with the
        longest backoff between them (a server's long Retry-After can outlast it)."""
        waits = sum(min(self.base_seconds * 2 ** n, self.max_backoff_seconds)
                    for n in range(self.attempts - 1))
        return self.attempts * timeout + waits

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` under the policy; the last error is re-raised when attempts run out.
        Once the stop event is set, no attempt starts and no wait continues."""

        def attempt() -> T:
            self.check_stop()
            return fn(*args, **kwargs)

        return self.retrying()(attempt)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are rare here)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        from email.utils import parsedate_to_datetime
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(when.timestamp() - time.time(), 0.0)
