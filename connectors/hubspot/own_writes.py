"""The moments the agent's own batch writes landed, so a re-read window can leave them out.

HubSpot's search lags, so each sweep re-reads ``[previous high-water mark - lookback, ...]``.
Right after a backfill that window holds every contact the agent just wrote: thousands of rows
the agent already knows, 200 a call. HubSpot answers each batch write with the records'
``updatedAt`` (their new ``lastmodifieddate``); the interval from the first to the last of a
batch is remembered per object, and a later sweep's re-read window skips those intervals with
filter groups (an OR of date ranges around them). Anything a person changed outside them is
still re-read; the trade-off is written down in docs/connectors.md.

Pure data; the intervals travel across processes in the connector's ``status()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

MAX_SKIPS = 4             # 5 filter groups at most: the ranges around 4 intervals
MERGE_GAP_MS = 1_000      # batches of one push follow each other: one interval
KEEP = 200                # intervals kept per object (the newest)

Interval = tuple[int, int]


class OwnWrites:
    """Intervals (epoch ms, remote clock) in which our batch writes stamped records."""

    def __init__(self, seen: Mapping[str, Sequence[Sequence[int]]] | Sequence[Any] = ()) -> None:
        self._by_object: dict[str, list[Interval]] = {}
        if isinstance(seen, Mapping):
            for obj, intervals in seen.items():
                self._by_object[str(obj)] = _valid(intervals)

    def note(self, obj: str, stamps: Iterable[Any]) -> None:
        """Remember one batch's ``updatedAt`` values (ISO text) as one interval."""
        moments = [ms for ms in (_epoch_ms(s) for s in stamps) if ms is not None]
        if not moments:
            return
        intervals = self._by_object.setdefault(obj, [])
        intervals.append((min(moments), max(moments)))
        self._by_object[obj] = merge(intervals, MERGE_GAP_MS)[-KEEP:]

    def inside(self, obj: str, lower: int, upper: int, most: int = MAX_SKIPS
               ) -> list[list[int]]:
        """The intervals within ``[lower, upper]`` (clipped), at most ``most``, JSON-safe."""
        clipped = [(max(a, lower), min(b, upper)) for a, b in self._by_object.get(obj, ())
                   if b >= lower and a <= upper]
        # keep the longest ones when there are too many: fewer rows re-read for the same calls
        kept = sorted(sorted(clipped, key=lambda i: i[1] - i[0], reverse=True)[:max(0, most)])
        return [[a, b] for a, b in kept]

    def state(self) -> dict[str, list[list[int]]]:
        return {obj: [[a, b] for a, b in intervals]
                for obj, intervals in self._by_object.items() if intervals}


def ranges(lower: int | None, upper: int, skip: Iterable[Sequence[int]]
           ) -> list[tuple[int | None, int]]:
    """``[lower, upper]`` minus the skipped intervals, as inclusive ranges."""
    intervals = sorted((int(a), int(b)) for a, b in skip)
    if lower is None or not intervals:
        return [(lower, upper)]
    out: list[tuple[int | None, int]] = []
    start = lower
    for a, b in intervals:
        if a > start:
            out.append((start, a - 1))
        start = max(start, b + 1)
    if start <= upper:
        out.append((start, upper))
    return out


def merge(intervals: Iterable[Interval], gap: int = 0) -> list[Interval]:
    out: list[Interval] = []
    for a, b in sorted(intervals):
        if out and a - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _valid(intervals: Any) -> list[Interval]:
    out = []
    for item in intervals or ():
        try:
            a, b = int(item[0]), int(item[1])
        except (TypeError, ValueError, IndexError):
            continue
        if a <= b:
            out.append((a, b))
    return merge(out)


def _epoch_ms(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)
