"""HubSpot authentication and rate limits, applied by the sandbox middleware.

Private-app limits: a rolling 10-second window (``TEN_SECONDLY_ROLLING``), search at N per
second (``SECONDLY``, and search answers carry no rate-limit headers), and a daily count that
resets at midnight (UTC here). A refused call is not counted.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import MutableMapping
from datetime import date, datetime
from typing import Any

from syncagent.sandbox.common import FaultProfile

TEN_SECONDS_MS = 10_000
JSON = (b"content-type", b"application/json;charset=utf-8")

_POLICY_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "SECONDLY": "You have reached your secondly limit.",
    "DAILY": "You have reached your daily limit.",
}


def rate_limit_body(policy: str) -> bytes:
    """HubSpot's 429 body for a policy (TEN_SECONDLY_ROLLING, SECONDLY or DAILY)."""
    return json.dumps({
        "status": "error",
        "message": _POLICY_MESSAGES[policy],
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "groupName": "sandbox-private-app",
    }).encode()


def is_search(scope: MutableMapping[str, Any]) -> bool:
    """CRM search calls (POST .../search) have their own per-second limit."""
    return bool(scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/search")
                and scope["path"].startswith("/crm/"))


def check_auth(scope: MutableMapping[str, Any], token: str,
               ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """401 with HubSpot's body unless the request carries `Authorization: Bearer <token>`."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            if value.decode("latin-1") == f"Bearer {token}":
                return None
            break
    body = json.dumps({
        "status": "error",
        "message": "Authentication credentials not found. This API supports OAuth 2.0 "
                   "authentication and you can find more details at "
                   "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        "correlationId": str(uuid.uuid4()),
        "category": "INVALID_AUTHENTICATION",
    }).encode()
    return 401, [JSON], body


class HubSpotRateLimiter:
    """Counts admitted calls per rolling 10 s, searches per rolling second, and per day."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ten_second: deque[float] = deque()
        self._search: deque[float] = deque()
        self._day: date | None = None
        self._daily = 0

    def _roll(self, now: datetime) -> float:
        stamp = now.timestamp()
        while self._ten_second and self._ten_second[0] <= stamp - 10:
            self._ten_second.popleft()
        while self._search and self._search[0] <= stamp - 1:
            self._search.popleft()
        if self._day != now.date():
            self._day, self._daily = now.date(), 0
        return stamp

    def admit(self, search: bool, now: datetime, profile: FaultProfile,
              ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """Count the call, or return the 429 answer when a limit is reached."""
        with self._lock:
            stamp = self._roll(now)
            if self._daily >= profile.hubspot_daily_limit:
                return 429, [JSON, *self._header_list(profile)], rate_limit_body("DAILY")
            if search:
                if len(self._search) >= profile.hubspot_searches_per_second:
                    return 429, [JSON], rate_limit_body("SECONDLY")
                self._search.append(stamp)
            else:
                if len(self._ten_second) >= profile.hubspot_requests_per_10s:
                    return 429, [JSON, *self._header_list(profile)], rate_limit_body(
                        "TEN_SECONDLY_ROLLING")
                self._ten_second.append(stamp)
            self._daily += 1
            return None

    def _header_list(self, profile: FaultProfile) -> list[tuple[bytes, bytes]]:
        values = {
            b"x-hubspot-ratelimit-daily": profile.hubspot_daily_limit,
            b"x-hubspot-ratelimit-daily-remaining": max(0, profile.hubspot_daily_limit
                                                        - self._daily),
            b"x-hubspot-ratelimit-interval-milliseconds": TEN_SECONDS_MS,
            b"x-hubspot-ratelimit-max": profile.hubspot_requests_per_10s,
            b"x-hubspot-ratelimit-remaining": max(0, profile.hubspot_requests_per_10s
                                                  - len(self._ten_second)),
        }
        return [(name, str(value).encode()) for name, value in values.items()]

    def headers(self, now: datetime, profile: FaultProfile) -> list[tuple[bytes, bytes]]:
        """The X-HubSpot-RateLimit-* headers as of now (after this call was counted)."""
        with self._lock:
            self._roll(now)
            return self._header_list(profile)

    def daily_usage(self, profile: FaultProfile) -> dict[str, int]:
        with self._lock:
            return {"used": self._daily, "max": profile.hubspot_daily_limit}
