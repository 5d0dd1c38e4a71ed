"""A compact set of remote ids, for a full id reconcile (``Page.reconcile_ids``).

A reconcile reads every live id of an object (every Lead of an org: millions, at the size
issue 18 plans for) only to ask, for each mirrored id, "is it still there?". A frozenset of
str costs ~100 bytes an id; this keeps one 64-bit hash an id, sorted in an ``array``
(8 bytes an id) and answered by binary search.

A hash can collide: a mirrored id whose hash equals a live id's is taken as live, so the
record it names is not marked deleted in this reconcile (the next one, in a process with
another hash seed, finds it). The chance is about known x live / 2**64 (1e-9 with 100,000
ids on each side), and it errs the safe way: a live record is never marked deleted.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable


class IdSet:
    """Ids, immutable once built; ``in`` and ``len`` only (the ids themselves are not kept).
    Hashes are this process's ``hash()``: build and ask in the same process."""

    __slots__ = ("_hashes",)

    def __init__(self, ids: Iterable[str] = ()) -> None:
        hashes = array("q")
        for rid in ids:      # one id at a time: no list of every id is ever held
            hashes.append(hash(str(rid)))
        ordered = sorted(hashes)
        self._hashes = array("q", (h for i, h in enumerate(ordered)
                                   if i == 0 or h != ordered[i - 1]))

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
