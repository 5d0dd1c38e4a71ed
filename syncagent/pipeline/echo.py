"""Echoes: a record read back that holds nothing new beyond the agent's own write.

After a push the mirror already holds the values the agent wrote (``record_written``). The
next pull reads those records again (their modstamps moved); when the fields, stamps aside,
are what the mirror holds, the person's inputs did not change, so the record is not queued
for matching and its person is not re-evaluated. Without this, the read-back re-scores every
written person at a later moment, and a score that decayed past a rounding step in those
seconds would be written again: the cycle after a write must plan nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from state.store import MirrorRow, StateStore
from syncagent.pipeline.records import Ref, parse_when, same_value

# Stamps the remote moves on every write, ours included: not content.
STAMPS = frozenset({"SystemModstamp", "LastModifiedDate", "LastModifiedById",
                    "lastmodifieddate", "hs_lastmodifieddate", "hs_updated_by_user_id"})


def echoes(store: StateStore, rows: Sequence[MirrorRow]) -> set[Ref]:
    """The refs among ``rows`` whose content equals what the mirror holds now."""
    by_object: dict[tuple[str, str], list[MirrorRow]] = defaultdict(list)
    for row in rows:
        if not row.deleted:
            by_object[(row.system, row.object)].append(row)
    out: set[Ref] = set()
    for (system, object_name), group in by_object.items():
        held = {r.remote_id: r for r in store.mirror.records(
            system, object_name, [r.remote_id for r in group])}
        for row in group:
            old = held.get(row.remote_id)
            if old is not None and not old.deleted and old.modstamp is not None \
                    and same_content(old.fields, row.fields):
                out.add((system, object_name, row.remote_id))
    return out


def same_content(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Every field the read returned holds what the mirror holds (a field the stream does not
    read, e.g. long text, is absent from the read and not compared)."""
    names = set(new) - STAMPS
    return all(_same(old.get(n), new.get(n)) for n in names if not n.startswith("__"))


def _same(a: Any, b: Any) -> bool:
    if same_value(a, b) or same_value(b, a):
        return True
    if isinstance(a, str) and isinstance(b, str):
        when_a, when_b = parse_when(a), parse_when(b)
        if when_a is not None and when_b is not None and not a.isdigit():
            return abs((when_a - when_b).total_seconds()) < 1
    return False


def drop_from_queue(store: StateStore, refs: Iterable[Ref], queued_before: set[Ref]) -> None:
    """Take echoes off the match queue, unless an earlier read queued them for a change."""
    done = [ref for ref in refs if ref not in queued_before]
    if done:
        store.persons.matched(done)
