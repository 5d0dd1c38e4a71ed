"""API budgets and client-side rate limiting (pure logic with an injectable clock and sleep).

:class:`DailyBudget` — the agent's own share of a daily allocation. The remote tells us the
allocation (Salesforce ``Sforce-Limit-Info: api-usage=USED/MAX``; HubSpot
``X-HubSpot-RateLimit-Daily``/``-Daily-Remaining``); the agent counts its own calls over a
rolling 24 h. A call that would take the agent past ``share * allocation`` is not made:
:class:`~syncagent.errors.BudgetExhausted` is raised *before* it, so cursors stay resumable.
When the org as a whole is at its allocation, :class:`~syncagent.errors.QuotaExhausted`.
``state()``/``restore`` let the pipeline carry the rolling count across runs.

:class:`RateLimiter` — sliding windows (e.g. 100 requests / 10 s, 5 searches / 1 s) that make
the caller wait *before* HubSpot has to answer 429, each request's slot held from its sending
to its answer (the server counts it on arrival, in between), and steered by the server's own
count when an answer carries one (``observe``).

Why these are ours and not a rate-limiting library's (pyrate-limiter 4.5 and limits 5.8 were
tried against them): the daily budget is not a rate limit but a share of an allocation the
remote reports at run time, it raises instead of waiting (quota and budget apart), and its
count persists across processes as hour buckets in the state DB; no library models that. For
the windows, a wait must end at once when the agent is told to stop (``stop``, SIGTERM), take
an injected clock and sleep (the tests' fake clocks), hold a slot for a request in flight
(``held``) and count what the server reports beyond our own calls (``observe``).
pyrate-limiter's blocking wait calls ``time.sleep`` (not interruptible), its clock goes in
through a private attribute, and its limiter starts a background leak thread; used as a bare
bucket it would still need this wait loop around it.
limits has no waiting at all, reads the wall clock (``time.time``), runs an expiry timer thread,
and counts windows in whole seconds: a 10.5 s window silently becomes 10 s.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from syncagent.errors import BudgetExhausted, Interrupted, QuotaExhausted

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DailyBudget:
    """The agent's share of a remote daily API allocation, over a rolling 24 hours."""

    def __init__(self, system: str, share: float, *, clock: Clock = _utc_now,
                 history: Mapping[str, int] | None = None) -> None:
        self.system = system
        self.share = share
        self.clock = clock
        self.allocation: int | None = None     # the org's / portal's daily maximum
        self.remote_used: int | None = None    # everyone's usage, as the remote reports it
        self._lock = threading.Lock()
        # hour bucket (ISO, UTC, truncated) -> calls the agent made in that hour
        self._hours: dict[str, int] = dict(history or {})

    # --- what the remote tells us -------------------------------------------------------
    def observe(self, used: int | None, allocation: int | None) -> None:
        with self._lock:
            if allocation:
                self.allocation = allocation
            if used is not None:
                self.remote_used = used

    # --- the agent's own count ------------------------------------------------------------
    def _bucket(self, moment: datetime) -> str:
        return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0).isoformat()

    def _prune(self) -> None:
        oldest = self._bucket(self.clock() - timedelta(hours=24))
        for key in [k for k in self._hours if k < oldest]:
            del self._hours[key]

    @property
    def agent_used(self) -> int:
        with self._lock:
            self._prune()
            return sum(self._hours.values())

    @property
    def limit(self) -> int | None:
        """Calls the agent may make in 24 h; None until the allocation is known."""
        if self.allocation is None:
            return None
        return int(self.allocation * self.share)

    def check(self, n: int = 1) -> None:
        """Raise before a call that would cross the agent's share or the remote allocation."""
        limit = self.limit
        used = self.agent_used
        if (self.allocation is not None and self.remote_used is not None
                and self.remote_used + n > self.allocation):
            raise QuotaExhausted(
                f"{self.system}: the daily API allocation is used up "
                f"({self.remote_used} of {self.allocation})",
                system=self.system, used=self.remote_used, allocation=self.allocation)
        if limit is not None and used + n > limit:
            raise BudgetExhausted(
                f"{self.system}: the agent's API budget is spent ({used} of {limit} calls, "
                f"{self.share:.0%} of the daily {self.allocation}); stopped before the next call",
                system=self.system, agent_calls=used, budget=limit, allocation=self.allocation)

    def spend(self, n: int = 1) -> None:
        with self._lock:
            key = self._bucket(self.clock())
            self._hours[key] = self._hours.get(key, 0) + n

    def state(self) -> dict[str, int]:
        """The rolling count, to persist between runs (pass back as ``history``)."""
        with self._lock:
            self._prune()
            return dict(self._hours)

    def status(self) -> dict[str, int | float | None]:
        return {"agent_calls_24h": self.agent_used, "agent_limit": self.limit,
                "share": self.share, "allocation": self.allocation,
                "remote_used": self.remote_used}


class Slot:
    """One request's place in a :class:`RateLimiter` window, from before it is sent until
    ``answered`` (called once its answer is in; again, or never, is harmless: the slot is
    closed when ``held`` ends at the latest)."""

    def __init__(self, close: Callable[[], float]) -> None:
        self._close = close
        self.answered_at: float | None = None

    def answered(self) -> None:
        if self.answered_at is None:
            self.answered_at = self._close()


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds (sliding); a caller waits for room.

    ``held()`` is the form for a limit the server counts on *arrival*: the slot is taken
    before the request is sent and its window runs from the answer. A request arrives
    somewhere between the two, so counted from the answer it can never share a server window
    with the request that reuses its slot, however late it arrived (a loaded machine, a busy
    server); counted from the sending, a request held up on the way lands in the same window
    as the one sent a window after it, and is refused with a 429. What that costs is one
    round trip per slot per window: for a 10 s window under 1%.
    ``observe()`` takes in what the server says of its own count (rate-limit headers)."""

    def __init__(self, limit: int, window: float, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit = max(limit, 1)
        # the setting is a ceiling the server's word can lower but never raise: an admin
        # may set it under the portal's limit to leave room for the app's other users
        self.ceiling = self.limit
        self.window = window
        self.monotonic = monotonic
        self.sleep = sleep
        # when each counted slot's window started, ascending: answered requests, and the
        # calls of others the server reported (observe)
        self._events: deque[float] = deque()
        self._in_flight = 0      # held() slots whose answer is not back yet
        self._lock = threading.Lock()
        self.waited = 0.0
        self.foreign = 0         # calls in the server's count that were not ours (observe)
        #: set when the agent must stop: a wait for the window ends at once (Interrupted)
        self.stop: threading.Event | None = None

    def _wait(self, seconds: float) -> None:
        if self.stop is None:
            self.sleep(seconds)
        elif self.stop.wait(seconds):
            raise Interrupted("stopped while waiting for the rate limit window")

    @contextmanager
    def held(self) -> Iterator[Slot]:
        """A slot from before the request is sent until ``answered()`` (or the block's end);
        its window runs from then."""
        self._take()
        slot = Slot(self._answered)
        try:
            yield slot
        finally:
            slot.answered()

    def _answered(self) -> float:
        with self._lock:
            self._in_flight -= 1
            now = self.monotonic()
            self._events.append(now)    # stamped under the lock: in order
            return now

    def observe(self, *, used: int | None, maximum: int | None = None,
                window: float | None = None, at: float | None = None) -> None:
        """The server's word on its window as of ``at`` (when the answer carrying it was in;
        now if None): ``used`` calls counted in it (its maximum less its remaining), its
        ``maximum`` and ``window`` (seconds).

        The limit follows the server's maximum, but never above the limit it was made with
        (the setting), and the window follows the server's. ``used`` beyond what this
        limiter held at ``at`` (slots in flight, or answered within a window of it) are
        someone else's calls on the same app, or calls this process made before it knew:
        they are counted as if made now, later than they can have arrived, so they end a
        window on at the latest.
        A count at or under ours needs nothing: a full window of our own calls is what pacing
        at the limit looks like, and the slots already wait for it."""
        with self._lock:
            if maximum:
                self.limit = min(maximum, self.ceiling)
            if window:
                self.window = window
            if used is None:
                return
            # counted as of ``at``, before any pruning as of now (what rolled out of our
            # window since is still in the server's count)
            now = self.monotonic()
            since = (now if at is None else at) - self.window
            ours = self._in_flight + sum(1 for start in self._events if start > since)
            if used > ours:
                self._events.extend([now] * (used - ours))
                self.foreign += used - ours

    def _prune(self) -> float:
        now = self.monotonic()
        while self._events and self._events[0] <= now - self.window:
            self._events.popleft()
        return now

    def _take(self) -> None:
        while True:
            with self._lock:
                now = self._prune()
                if len(self._events) + self._in_flight < self.limit:
                    self._in_flight += 1
                    return
                # every slot in flight: the first to free is one answered now, a window on
                wait = self._events[0] + self.window - now if self._events else self.window
            self.waited += wait
            self._wait(max(wait, 0.001))
