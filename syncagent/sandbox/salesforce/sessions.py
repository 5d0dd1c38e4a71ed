"""Per-org request state that is not records: API usage and open query cursors."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime

from syncagent.sandbox.salesforce.soql import Query
from syncagent.sandbox.salesforce.store import Record

CURSOR_IDLE_S = 15 * 60
MAX_CURSORS = 50


@dataclass
class Cursor:
    """The server side of a nextRecordsUrl (idle time is real time, as for the JWT clock:
    a simulation jumping the sandbox clock must not kill a cursor being read)."""

    rows: list[Record]
    query: Query
    batch: int
    touched: float          # time.monotonic()


class CursorTable:
    """Open query cursors by locator: the oldest goes past MAX_CURSORS, an idle one after
    CURSOR_IDLE_S, as Salesforce limits open cursors per user."""

    def __init__(self) -> None:
        self._open: OrderedDict[str, Cursor] = OrderedDict()

    def open(self, rows: list[Record], query: Query, batch: int) -> str:
        locator = "01g" + secrets.token_hex(8)[:15].upper()
        while len(self._open) >= MAX_CURSORS:
            self._open.popitem(last=False)
        self._open[locator] = Cursor(rows, query, batch, time.monotonic())
        return locator

    def get(self, locator: str) -> Cursor | None:
        cur = self._open.get(locator)
        now = time.monotonic()
        if cur is None or now - cur.touched > CURSOR_IDLE_S:
            self._open.pop(locator, None)
            return None
        cur.touched = now
        self._open.move_to_end(locator)
        return cur

    def clear(self) -> None:
        self._open.clear()


class ApiUsage:
    """API requests in the rolling last 24 hours, in one-minute buckets."""

    def __init__(self) -> None:
        self._buckets: deque[list[int]] = deque()      # [minute, count]
        self._total = 0

    def _evict(self, minute: int) -> None:
        while self._buckets and self._buckets[0][0] <= minute - 24 * 60:
            self._total -= self._buckets.popleft()[1]

    def used(self, now: datetime) -> int:
        self._evict(int(now.timestamp() // 60))
        return self._total

    def add(self, now: datetime, n: int = 1) -> None:
        minute = int(now.timestamp() // 60)
        self._evict(minute)
        if self._buckets and self._buckets[-1][0] == minute:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([minute, n])
        self._total += n
