"""A compact set of remote ids, for a full id reconcile (``Page.reconcile_ids``).

A reconcile reads every live id of an object (every Lead of an org: millions, at the size
issue 18 plans for) only to ask, for each mirrored id, "is it still there?". A frozenset of
str costs ~100 bytes an id; this keeps one 64-bit hash an id, sorted in an ``array``
(8 bytes an id) and answered by binary search.

The build never holds the hashes as Python ints all at once (36 bytes each, plus a list slot:
a million ids would need 44 MB of them for a moment): they are sorted a short run at a time,
each run kept as an ``array``, and the runs merged into the final array. Its peak is about
16 bytes an id (the runs and the result) and one run's list.

A hash can collide: a mirrored id whose hash equals a live id's is taken as live, so the
record it names is not marked deleted in this reconcile (the next one, in a process with
another hash seed, finds it). The chance is about known x live / 2**64 (1e-9 with 100,000
ids on each side), and it errs the safe way: a live record is never marked deleted.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable

#: hashes sorted at a time: the only Python ints of the build held together (~300 KB)
RUN = 8_192


class IdSet:
    """Ids, immutable once built; ``in`` and ``len`` only (the ids themselves are not kept).
    Hashes are this process's ``hash()``: build and ask in the same process."""

    __slots__ = ("_hashes",)

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._hashes = array("q")
        last: int | None = None
        for value in heapq.merge(*_sorted_runs(ids)):
            if value != last:     # equal ids (and equal hashes) are kept once
                self._hashes.append(value)
                last = value

    def __contains__(self, rid: object) -> bool:
        if not isinstance(rid, str):
            return False
        wanted = hash(rid)
        at = bisect_left(self._hashes, wanted)
        return at < len(self._hashes) and self._hashes[at] == wanted

    def __len__(self) -> int:
        return len(self._hashes)

    def __repr__(self) -> str:
        return f"IdSet({len(self)} ids)"


def _sorted_runs(ids: Iterable[str]) -> list[array[int]]:
    """The ids' hashes in sorted runs of at most ``RUN``, each an ``array`` (one id at a
    time from ``ids``: no list of every id is ever held)."""
    runs: list[array[int]] = []
    run: list[int] = []
    for rid in ids:
        run.append(hash(str(rid)))
        if len(run) == RUN:
            run.sort()
            runs.append(array("q", run))
            run.clear()
    run.sort()
    if run:
        runs.append(array("q", run))
    return runs
