"""Echoes: a record read back that holds nothing new beyond the agent's own write.

After a push the mirror already holds the values the agent wrote (``record_written``). The
next pull reads those records again (their modstamps moved); when the fields, stamps aside,
are what the mirror holds, the person's inputs did not change, so the record is not queued
for matching and its person is not re-evaluated. Without this, the read-back re-scores every
written person at a later moment, and a score that decayed past a rounding step in those
seconds would be written again: the cycle after a write must plan nothing.

The same goes for activities that come with a record: HubSpot contacts carry page views, form
submissions and e-mail opens and clicks in their properties, so a contact read back brings
them again. Only an activity that is new or changed is news for its record's person.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from state.store import ActivityRow, MirrorRow, StateStore
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


def unchanged(store: StateStore, records: Sequence[MirrorRow],
              activities: Sequence[ActivityRow], news: set[Ref]) -> set[Ref]:
    """The refs a page queues for matching that bring nothing new: records that only repeat
    what the mirror holds, and records pointed at only by activities read again as stored
    (``news`` from ``activity_news``)."""
    own = {(r.system, r.object, r.remote_id) for r in records}
    pointed = {(a.system, a.ref_object, a.ref_id) for a in activities
               if a.ref_object and a.ref_id} - own
    return (echoes(store, records) | pointed) - news


def activity_news(store: StateStore, rows: Sequence[ActivityRow], *, changed_only: bool = False
                  ) -> tuple[list[ActivityRow], set[Ref]]:
    """The activities to store, and the refs of the records whose activities are news.
    ``changed_only``: leave out those stored as they are (a read-back of contacts brings all
    their e-mail activities again: nothing to encode and write).

    An activity derived from a counter (``derived_from``: the n-th page view) is dated by the
    read that first saw it; it keeps that date when read again, or every read-back after the
    agent's own write would move all its past page views to the moment of that write."""
    # by their own keys: a page of events reads only those events back, not every activity
    # of every contact they point at (a backfill's pages met more of them page by page)
    known = store.mirror.activities_by_source((a.system, a.source_id) for a in rows)
    out: list[ActivityRow] = []
    news: set[Ref] = set()
    for row in rows:
        old = known.get((row.system, row.source_id))
        if old is not None and row.details.get("derived_from"):
            row = replace(row, occurred_at=old.occurred_at)
        if old is None or (old.kind, old.occurred_at, old.ref_object, old.ref_id,
                           old.details) != (row.kind, row.occurred_at, row.ref_object,
                                            row.ref_id, row.details):
            news.add((row.system, row.ref_object or "", row.ref_id or ""))
        elif changed_only:
            continue
        out.append(row)
    return out, news


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

