"""Pure cursor logic shared by both connectors (no I/O; tested with plain data).

The rules, and why:
- Read with ``>= high_water - lookback``: a transaction that commits late carries an older
  modstamp, and HubSpot's search index lags; a strict ``>`` loses those rows.
- Dedupe on ``(id, modstamp)``: the overlap re-reads rows already emitted; a row is emitted
  again only when its modstamp changed (a new version). The keys of emitted rows that fall in
  the next re-read window travel with the cursor (``Cursor.boundary_ids``).
- Never advance the high-water mark past the cycle start: rows stamped later than the moment
  the cycle began may still be invisible, so the window always re-covers
  ``[cycle_start - lookback, ...)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import Cursor


def record_key(record_id: str, modstamp: datetime, fingerprint: str = "") -> str:
    """The dedupe key of one version of a record: ``"<id>@<epoch ms>[#<fingerprint>]"``.

    Salesforce stamps to the second: two edits inside one second share a SystemModstamp, so
    the key also carries a short hash of the row's content when the caller gives one.
    """
    key = f"{record_id}@{to_epoch_ms(modstamp)}"
    return f"{key}#{fingerprint}" if fingerprint else key


def fingerprint(row: Mapping[str, Any]) -> str:
    """A short, stable hash of a row's content."""
    text = json.dumps(row, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=6).hexdigest()


def to_epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_epoch_ms(value: int | str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _key_time(key: str) -> datetime | None:
    _, _, stamp = key.rpartition("@")
    ms = stamp.partition("#")[0]
    try:
        return from_epoch_ms(ms)
    except ValueError:
        return None


def lower_bound(cursor: Cursor | None, lookback: timedelta) -> datetime | None:
    """Where a read starts: the high-water mark minus the lookback (None: read everything)."""
    if cursor is None or cursor.modstamp is None:
        return None
    return cursor.modstamp - lookback


class CursorWindow:
    """Tracks one read: admits each row at most once per version and computes the new cursor."""

    def __init__(self, cursor: Cursor | None, *, lookback: timedelta,
                 cycle_start: datetime) -> None:
        self.start = cursor or Cursor()
        self.lookback = lookback
        self.cycle_start = cycle_start.astimezone(UTC)
        self.high: datetime | None = self.start.modstamp
        self._keys: dict[str, datetime] = {}
        for key in self.start.boundary_ids:
            moment = _key_time(key)
            if moment is not None:
                self._keys[key] = moment
        self.emitted = 0
        self.skipped = 0

    @property
    def lower(self) -> datetime | None:
        return lower_bound(self.start, self.lookback)

    def admit(self, record_id: str, modstamp: datetime, fingerprint: str = "") -> bool:
        """True when this version of the row has not been emitted before (then it is recorded)."""
        key = record_key(record_id, modstamp, fingerprint)
        if key in self._keys:
            self.skipped += 1
            return False
        self._keys[key] = modstamp
        if self.high is None or modstamp > self.high:
            self.high = modstamp
        self.emitted += 1
        return True

    def capped_high(self) -> datetime | None:
        if self.high is None:
            return None
        return min(self.high, self.cycle_start)

    def cursor(self, *, last_id: str | None = None,
               sweep: Mapping[str, Any] | None = None,
               hold: datetime | None = None, key_floor: datetime | None = None,
               complete: bool = False) -> Cursor:
        """The cursor to commit now.

        ``complete``: the read reached the end. Everything stamped before
        ``cycle_start - lookback`` had committed when the read began and was read, so the
        high-water mark becomes the cycle start (the next read starts at
        ``cycle_start - lookback``), not merely the newest row seen: after a quiet spell the
        window then holds nothing already read, and a poll costs one call.
        ``hold`` keeps the high-water mark at that value (a HubSpot sweep ordered by id cannot
        advance it before the sweep ends). Keys are kept from ``key_floor`` (default: the
        high-water mark minus the lookback, i.e. the next read's window) on.

        The window itself forgets the keys below that floor too: only keys inside the
        re-read window can come back, and keeping every key a long read emitted would grow
        memory with the stream (a backfill reads every record). The window is then exactly
        what a read resumed from this cursor starts with, the state a crash between pages
        leaves (tests/e2e/test_crash.py).
        """
        if hold is not None:
            high: datetime | None = hold
        elif complete:
            high = self.cycle_start
        else:
            high = self.capped_high()
        floor = key_floor
        if floor is None and high is not None:
            floor = high - self.lookback
        if floor is not None:
            self._keys = {k: moment for k, moment in self._keys.items() if moment >= floor}
        return Cursor(modstamp=high, last_id=last_id, boundary_ids=frozenset(self._keys),
                      sweep=sweep)


def max_numeric_id(a: str | None, b: str) -> str:
    """The larger of two HubSpot ids as HubSpot orders them: numerically, not as text."""
    if a is None:
        return b
    return b if _numeric(b) > _numeric(a) else a


def _numeric(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1
