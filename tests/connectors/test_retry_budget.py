"""The one retry policy, the daily budget and the client-side rate limiter (no network)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from connectors.budget import DailyBudget, RateLimiter
from connectors.retry import RetryPolicy, parse_retry_after
from syncagent.errors import (
    AuthError,
    BudgetExhausted,
    LockContention,
    QuotaExhausted,
    RateLimited,
    RecordRejected,
    RemoteTimeout,
    ServerError,
)


def _policy(sleeps: list[float], attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, sleep=sleeps.append, rng=random.Random(1))


@pytest.mark.parametrize("error", [ServerError("5xx"), RemoteTimeout("reset"),
                                   RateLimited("429"), LockContention("423")])
def test_retryable_errors_are_retried_until_success(error: Exception) -> None:
    sleeps: list[float] = []
    outcomes: list[Exception | str] = [error, error, "ok"]

    def call() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert _policy(sleeps).call(call) == "ok"
    assert len(sleeps) == 2


@pytest.mark.parametrize("error", [AuthError("no"), QuotaExhausted("day"),
                                   BudgetExhausted("share"),
                                   RecordRejected("bad", system="s", object_name="o",
                                                  record_id=None, code="X")])
def test_fatal_and_rejected_errors_are_not_retried(error: Exception) -> None:
    sleeps: list[float] = []
    calls = []

    def call() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        _policy(sleeps).call(call)
    assert calls == [1] and sleeps == []


def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    sleeps: list[float] = []
    calls = []

    def call() -> None:
        calls.append(1)
        raise ServerError("still down")

    with pytest.raises(ServerError):
        _policy(sleeps, attempts=3).call(call)
    assert len(calls) == 3 and len(sleeps) == 2


def test_retry_after_is_honoured_over_backoff() -> None:
    sleeps: list[float] = []
    outcomes = [RateLimited("slow down", retry_after=7.0), "ok"]

    def call() -> object:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    _policy(sleeps).call(call)
    assert 7.0 <= sleeps[0] <= 8.0


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(attempts=12, base_seconds=0.5, max_backoff_seconds=4.0,
                         sleep=lambda s: None, rng=random.Random(3))
    sleeps: list[float] = []
    policy.sleep = sleeps.append

    def call() -> None:
        raise ServerError("down")

    with pytest.raises(ServerError):
        policy.call(call)
    assert all(0 <= s <= 4.0 for s in sleeps)
    assert len(set(sleeps)) > 1          # jittered, not fixed


def test_parse_retry_after_seconds_and_garbage() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_budget_stops_before_the_call_that_would_cross_the_share() -> None:
    budget = DailyBudget("salesforce", 0.2, clock=_Clock())
    budget.observe(used=0, allocation=1000)
    for _ in range(200):
        budget.check()
        budget.spend()
    with pytest.raises(BudgetExhausted) as info:
        budget.check()
    assert "200 of 200" in str(info.value)


def test_budget_counts_a_rolling_24_hours_and_survives_a_restart() -> None:
    clock = _Clock()
    budget = DailyBudget("salesforce", 0.2, clock=clock)
    budget.observe(used=0, allocation=100)
    for _ in range(20):
        budget.spend()
    restored = DailyBudget("salesforce", 0.2, clock=clock, history=budget.state())
    restored.observe(used=20, allocation=100)
    with pytest.raises(BudgetExhausted):
        restored.check()
    clock.now += timedelta(hours=25)
    restored.check()                      # the old hour has rolled out of the window


def test_budget_reports_quota_when_the_org_is_at_its_allocation() -> None:
    budget = DailyBudget("salesforce", 1.0, clock=_Clock())
    budget.observe(used=1000, allocation=1000)
    with pytest.raises(QuotaExhausted):
        budget.check()


def test_rate_limiter_waits_instead_of_exceeding_the_window() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(5, 1.0, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(12):
        with limiter.held():    # answered at once: each slot's window runs from its taking
            pass
    assert now[0] >= 2.0                  # 12 events at 5/s need at least two full windows
    assert limiter.waited == pytest.approx(sum(slept))


def test_a_retry_wait_ends_as_soon_as_the_stop_event_is_set() -> None:
    """A Retry-After of two minutes must not hold SIGTERM: the wait returns when stop is set,
    as Interrupted (retryable: the work is left for the next cycle), and no attempt follows."""
    import threading

    from syncagent.errors import Interrupted, ServerError

    stop = threading.Event()
    attempts: list[int] = []

    def always_503() -> None:
        attempts.append(1)
        threading.Timer(0.05, stop.set).start()
        raise ServerError("503", retry_after=120.0)

    policy = RetryPolicy(attempts=5, max_retry_after_seconds=120.0, stop=stop)
    worker_done = threading.Event()
    caught: list[BaseException] = []

    def run() -> None:
        try:
            policy.call(always_503)
        except BaseException as exc:
            caught.append(exc)
        worker_done.set()

    threading.Thread(target=run, daemon=True).start()
    assert worker_done.wait(30), "the retry wait ignored the stop event"
    assert len(attempts) == 1 and isinstance(caught[0], Interrupted)


def test_no_call_starts_once_stop_is_set_and_rate_limit_waits_end_too() -> None:
    import threading

    from syncagent.errors import Interrupted

    stop = threading.Event()
    stop.set()
    calls: list[int] = []
    with pytest.raises(Interrupted):
        RetryPolicy(stop=stop).call(lambda: calls.append(1))
    assert calls == []
    limiter = RateLimiter(1, 600.0)
    limiter.stop = stop
    with limiter.held():  # the window has room: no wait
        pass
    with pytest.raises(Interrupted), limiter.held():  # would wait 600 s
        pass


def test_a_held_slot_counts_its_window_from_the_answer_not_the_sending() -> None:
    """HubSpot counts a search when it arrives, which may be as late as its answer: two
    searches of 0.4 s each, one after the other, at 2 a second: the third starts a window
    after the first one's answer (1.4 s), not a window after it was sent (1.0 s)."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(2, 1.0, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(2):
        with limiter.held():
            now[0] += 0.4             # the request on its way and the answer coming back
    with limiter.held():
        assert now[0] >= 1.4          # the first answer (0.4 s) plus the window


def test_a_slot_in_flight_is_taken_until_its_answer_and_a_window_after() -> None:
    """With every slot in flight, the next request waits for an answer and a window after
    it, however long the answer takes."""
    import threading

    limiter = RateLimiter(1, 0.2)
    answered: list[float] = []
    started = threading.Event()

    def slow_request() -> None:
        with limiter.held():
            started.set()
            time.sleep(0.3)
            answered.append(time.monotonic())

    worker = threading.Thread(target=slow_request)
    worker.start()
    assert started.wait(5)
    with limiter.held():
        sent = time.monotonic()
    worker.join()
    assert sent >= answered[0] + 0.2 - 0.01
