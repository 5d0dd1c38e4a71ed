"""Match: link every changed person record to one `person`.

Order of evidence: an existing link; a cross-system id the record carries (HubSpot's
`salesforceleadid` / `salesforcecontactid`, a converted Lead's contact); then the normalised
e-mail. When several Salesforce records share an e-mail, nothing is guessed: the record gets a
person of its own and the ambiguity is recorded as a data-quality item for a person to resolve.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from state.store import MirrorRow, StateStore
from syncagent.pipeline.records import Ref, cross_refs, is_person

log = structlog.get_logger(__name__)

# Salesforce first, so a HubSpot contact met in the same cycle finds its Salesforce person.
CHUNK = 2_000
MATCH_ORDER = {("salesforce", "Contact"): 0, ("salesforce", "Lead"): 1, ("hubspot", "contacts"): 2}


@dataclass
class MatchResult:
    dirty: set[int] = field(default_factory=set)
    new_persons: int = 0
    ambiguous: int = 0


@dataclass
class _Matcher:
    links: dict[Ref, int]
    by_email: dict[str, list[Ref]]
    now: datetime
    new_keys: list[str | None] = field(default_factory=list)
    new_links: list[tuple[Ref, int, str]] = field(default_factory=list)
    flags: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    def place(self, row: MirrorRow) -> int:
        ref = (row.system, row.object, row.remote_id)
        if ref in self.links:
            return self.links[ref]
        person, how = self._find(row, ref)
        if person is None:
            self.new_keys.append(row.email_key)
            person, how = -len(self.new_keys), "new"  # placeholder until the bulk insert
        self.links[ref] = person
        self.new_links.append((ref, person, how))
        return person

    def _find(self, row: MirrorRow, ref: Ref) -> tuple[int | None, str]:
        for other in cross_refs(row.system, row.object, row.fields):
            if other in self.links:
                return self.links[other], "cross_id"
        if not row.email_key:
            return None, "new"
        same = [r for r in self.by_email.get(row.email_key, ()) if r != ref]
        salesforce = [r for r in same if r[0] == "salesforce"]
        if len(salesforce) + (row.system == "salesforce") > 1:
            self.flags.append((row.email_key, {"records": sorted(map(list, {*salesforce, ref}))}))
            return None, "new"
        persons = {self.links[r] for r in same if r in self.links}
        if len(persons) == 1:
            return persons.pop(), "email"
        return None, "new"


def match(store: StateStore, now: datetime) -> MatchResult:
    """Link the records pulled since the last match to persons; returns the persons whose
    data changed. The queue is emptied only after links and dirty flags are stored."""
    changed = store.persons.queued()
    result = MatchResult()
    matcher = _Matcher(store.persons.links(), _email_index(store), now)
    for rows in _changed_person_rows(store, changed):
        result.dirty.update(matcher.place(row) for row in rows)
    for ref in changed:  # activities point at records: their person changed too
        if ref in matcher.links:
            result.dirty.add(matcher.links[ref])
    real_ids = store.persons.create(matcher.new_keys, now=now)

    def resolve(pid: int) -> int:
        return real_ids[-pid - 1] if pid < 0 else pid

    store.persons.link([(s, o, r, resolve(pid), how)
                        for (s, o, r), pid, how in matcher.new_links], now=now)
    for email, detail in matcher.flags:
        store.flags.flag("ambiguous_email", f"ambiguous_email:{email}", detail, now=now)
    result.dirty = {resolve(pid) for pid in result.dirty}
    store.persons.mark_dirty(result.dirty)
    store.persons.matched(changed)
    result.new_persons = len(real_ids)
    result.ambiguous = len({email for email, _ in matcher.flags})
    if result.ambiguous:
        log.warning("ambiguous e-mail matches recorded", count=result.ambiguous)
    return result


def _email_index(store: StateStore) -> dict[str, list[Ref]]:
    index: dict[str, list[Ref]] = defaultdict(list)
    for system, object_name, remote_id, key in store.mirror.email_index():
        if is_person(system, object_name):
            index[key].append((system, object_name, remote_id))
    return index


def _changed_person_rows(store: StateStore, changed: set[Ref]) -> Iterator[list[MirrorRow]]:
    """Changed person records in matching order, a chunk at a time (a backfill changes all)."""
    by_object: dict[tuple[str, str], list[str]] = defaultdict(list)
    for system, object_name, remote_id in changed:
        if is_person(system, object_name):
            by_object[(system, object_name)].append(remote_id)
    for key in sorted(by_object, key=MATCH_ORDER.__getitem__):
        ids = sorted(by_object[key])
        for start in range(0, len(ids), CHUNK):
            rows = store.mirror.records(key[0], key[1], ids[start:start + CHUNK])
            yield sorted((r for r in rows if not r.deleted), key=lambda r: r.remote_id)
