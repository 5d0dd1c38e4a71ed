"""HubSpot's call pacing against the sandbox's rate limits: the limits used in full, no 429.

The sandbox counts a call when it arrives, after its injected latency (middleware.py), like
HubSpot; a uniform jitter on that latency is the worst input for a client that paces: a call
sent first can arrive last. The ten-second window is HubSpot's own, so those tests take ten
seconds of real time each; the rest run on a fake or the sandbox's clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import SecretStr

from connectors.budget import RateLimiter
from connectors.hubspot.client import SEARCH_WINDOW, WINDOW_MARGIN, HubSpotClient
from syncagent.sandbox.server import RunningSandbox
from syncagent.settings import HubSpotSettings
from tests.connectors.conftest import fast_retry
from tests.fixtures.sandbox import SandboxFactory
from tests.sandbox.conftest import hs_call


def _client(sandbox: RunningSandbox, *, per_10s: int, searches: int = 5,
            limiter: RateLimiter | None = None, attempts: int = 8) -> HubSpotClient:
    info = sandbox.info["hubspot"]
    settings = HubSpotSettings(base_url=info["base_url"],
                               access_token=SecretStr(info["access_token"]),
                               requests_per_10s=per_10s, searches_per_second=searches,
                               timeout_seconds=10.0)
    return HubSpotClient(settings, ca_bundle=sandbox.ca_cert, retry=fast_retry(attempts),
                         limiter=limiter)


def _refused(sandbox: RunningSandbox) -> int:
    return sum(c["count"] for c in sandbox.stats()["calls"] if c["status"] == 429)


def _answered_at(calls: int, threads: int, call: Callable[[], Any]) -> list[float]:
    """Make ``calls`` calls from ``threads`` threads at once; when each was answered, in
    seconds from the start, ascending."""
    started = time.monotonic()

    def one(_: int) -> float:
        call()
        return time.monotonic() - started

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sorted(pool.map(one, range(calls)))


def test_a_burst_of_callers_arriving_out_of_order_fills_the_ten_second_window_without_a_429(
        sandbox_factory: SandboxFactory) -> None:
    """Sixteen calls from eight threads at once against 10 per 10 s, each arriving 0-500 ms
    after it was sent: ten are answered at once (the whole window, none kept back), the other
    six a window later, and the sandbox refuses none."""
    sandbox = sandbox_factory(leads=20, faults={"hubspot_requests_per_10s": 10,
                                                "hubspot": {"jitter_ms": 500}})
    client = _client(sandbox, per_10s=10)
    answered = _answered_at(16, 8, lambda: client.owners_page(None, limit=1))
    assert _refused(sandbox) == 0
    assert answered[9] < 3.0                     # the first window used in full
    assert answered[10] >= 10.0 and answered[-1] < 13.0   # the rest as soon as it rolls
    assert client.calls.total == 16


def test_concurrent_searches_arriving_out_of_order_stay_under_the_per_second_limit(
        sandbox_factory: SandboxFactory) -> None:
    """Twenty searches from ten threads at once against 5 a second, each arriving 0-400 ms
    after it was sent (the sandbox counts on arrival; search answers carry no headers to
    steer by): none is refused, and they go at the limit less one round trip per slot."""
    sandbox = sandbox_factory(leads=20, faults={"hubspot_searches_per_second": 5,
                                                "hubspot_search_delay_seconds": 0,
                                                "hubspot": {"jitter_ms": 400}})
    client = _client(sandbox, per_10s=100, searches=5)
    answered = _answered_at(20, 10, lambda: client.search("contacts", {"limit": 1}))
    assert _refused(sandbox) == 0
    assert answered[4] < 1.5                     # five at once
    # four rounds of five: each a window after the last answer of its slot, at most a jitter
    # and a round trip later
    assert answered[-1] < 4 * (SEARCH_WINDOW + WINDOW_MARGIN + 0.4 + 0.3)


class _SandboxTime:
    """The sandbox's clock for the client's limiter: a wait moves it on instead of sleeping,
    only as far as the latest wait asked (several threads waiting for one moment move it
    once)."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.clock = sandbox.ctx.clock
        self.lock = threading.Lock()

    def now(self) -> float:
        return self.clock.now().timestamp()

    def sleep(self, seconds: float) -> None:
        with self.lock:
            target = self.now() + seconds
            self.clock.advance(max(0.0, target - self.now()))


def test_another_app_spending_the_window_mid_burst_costs_one_429_per_blind_call(
        sandbox_factory: SandboxFactory) -> None:
    """Someone else spends 6 of the portal's 10 calls; then eight of ours go at once, before
    any answer could tell: four are refused (429, Remaining 0). Each is retried at once
    (retry waits of 50 ms), and the limiter, told by the answers that the window is full,
    holds every retry until it rolls: all eight land, with no 429 beyond the four."""
    sandbox = sandbox_factory(leads=20, faults={"hubspot_requests_per_10s": 10})
    for _ in range(6):
        assert hs_call(sandbox, "GET", "/crm/v3/owners/?limit=1").ok
    clock = _SandboxTime(sandbox)
    limiter = RateLimiter(10, 10.02, monotonic=clock.now, sleep=clock.sleep)
    client = _client(sandbox, per_10s=10, limiter=limiter, attempts=3)
    gate = threading.Barrier(8)

    def call() -> Any:
        gate.wait(5)
        return client.owners_page(None, limit=1)

    with ThreadPoolExecutor(max_workers=8) as pool:
        pages = list(pool.map(lambda _: call(), range(8)))
    assert all(page.get("results") is not None for page in pages)
    assert _refused(sandbox) == 4
    assert client.calls.total == 12


def test_the_answers_maximum_replaces_a_setting_too_high(
        sandbox_factory: SandboxFactory) -> None:
    """The setting says 100 per 10 s, the portal allows 10 (X-HubSpot-RateLimit-Max): after
    the first answer the client paces at 10, so twelve calls one after another meet no 429."""
    sandbox = sandbox_factory(leads=20, faults={"hubspot_requests_per_10s": 10})
    clock = _SandboxTime(sandbox)
    limiter = RateLimiter(100, 10.02, monotonic=clock.now, sleep=clock.sleep)
    client = _client(sandbox, per_10s=100, limiter=limiter)
    for _ in range(12):
        client.owners_page(None, limit=1)
    assert _refused(sandbox) == 0
    assert limiter.limit == 10 and limiter.window == 10 + WINDOW_MARGIN
    assert limiter.foreign == 0                  # our own calls, each already counted


def test_the_answers_maximum_never_raises_a_setting_set_lower(
        sandbox_factory: SandboxFactory) -> None:
    """The portal allows 100 per 10 s but the admin set 3 to leave the rest to the app's
    other users: the client keeps to 3 whatever the answers say, so a fourth call waits
    for the first slot to roll."""
    sandbox = sandbox_factory(leads=20)
    clock = _SandboxTime(sandbox)
    limiter = RateLimiter(3, 10.02, monotonic=clock.now, sleep=clock.sleep)
    client = _client(sandbox, per_10s=3, limiter=limiter)
    start = clock.now()
    for _ in range(4):
        client.owners_page(None, limit=1)
    assert limiter.limit == 3
    assert clock.now() - start >= 10.0


# --- the limiter itself, on a fake clock -------------------------------------------------


class _FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_full_window_of_our_own_calls_waits_only_for_its_first_slot() -> None:
    """The server's Remaining reaching 0 through our own calls is the limit in full use: the
    next call waits for the first slot to roll (its answer + the window), not a whole window
    from now, and nothing is counted twice."""
    fake = _FakeTime()
    limiter = RateLimiter(3, 10.0, monotonic=fake.monotonic, sleep=fake.sleep)
    for used in (1, 2, 3):
        with limiter.held() as slot:
            fake.now += 0.1
            slot.answered()
        limiter.observe(used=used, maximum=3, window=10.0)
    assert limiter.foreign == 0
    with limiter.held():
        assert abs(fake.now - 10.1) < 0.01      # the first answer (0.1 s) + the window


def test_calls_the_server_counts_beyond_ours_are_held_a_window_from_now() -> None:
    """Two calls of ours are in the window, the server counts four: the two it counts
    beyond ours are someone else's, made at the latest now, so they keep their slots a
    whole window from now; one slot is left, then the wait is for our first call to roll."""
    fake = _FakeTime()
    limiter = RateLimiter(5, 10.0, monotonic=fake.monotonic, sleep=fake.sleep)
    for _ in range(2):
        with limiter.held():
            fake.now += 1.0
    limiter.observe(used=4, maximum=5)
    assert limiter.foreign == 2
    limiter.observe(used=4, maximum=5)           # the same count again: already held
    assert limiter.foreign == 2
    with limiter.held():
        assert fake.now == 2.0                   # the fifth slot: free
    with limiter.held():
        assert fake.now == 11.0                  # our first call's answer (1.0) + 10


def test_a_slot_runs_from_its_answer_not_from_the_end_of_reading_it() -> None:
    fake = _FakeTime()
    limiter = RateLimiter(1, 1.0, monotonic=fake.monotonic, sleep=fake.sleep)
    with limiter.held() as slot:
        fake.now += 0.2                          # the request, up to the answer's headers
        slot.answered()
        fake.now += 0.5                          # reading and decoding a large body
        slot.answered()                          # again: no second count
    with limiter.held():
        assert abs(fake.now - 1.2) < 0.01
