"""Match: link every changed person record to one `person`.

Order of evidence: an existing link; a cross-system id the record carries (its profile's
``cross_ids``: HubSpot's `salesforceleadid` / `salesforcecontactid`, a converted Lead's
contact); then the normalised e-mail. When several records of systems that do not keep
e-mails unique (Salesforce) share an e-mail, nothing is guessed: the record gets a person of
its own and the ambiguity is recorded as a data-quality item for a person to resolve.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from connectors.registry import profile_of
from state.store import MirrorRow, StateStore
from syncagent.pipeline.records import Ref, cross_refs, is_person, match_rank

log = structlog.get_logger(__name__)

CHUNK = 2_000
AMBIGUOUS = "ambiguous_email:"   # the key prefix of an ambiguous e-mail's data-quality item


@dataclass
class MatchResult:
    dirty: int = 0          # persons waiting for evaluation once the match is done
    new_persons: int = 0
    ambiguous: int = 0


@dataclass
class _Matcher:
    """One chunk's matching: the links and e-mail holders of the chunk's records, read from
    the state DB for this chunk only (a backfill of a million records never holds them all)."""

    links: dict[Ref, int]
    by_email: dict[str, list[Ref]]
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
        loose = [r for r in same if not _unique_email(r[0])]
        if len(loose) + (not _unique_email(row.system)) > 1:
            self.flags.append((row.email_key, {"records": sorted(map(list, {*loose, ref}))}))
            return None, "new"
        persons = {self.links[r] for r in same if r in self.links}
        if len(persons) == 1:
            return persons.pop(), "email"
        return None, "new"


def match(store: StateStore, now: datetime) -> MatchResult:
    """Link the records pulled since the last match to persons and mark their persons dirty,
    a chunk of the queue at a time. Each chunk leaves the queue only after its links and dirty
    flags are stored, so a crash re-matches at most the chunk it was in."""
    result = MatchResult()
    emails: set[str] = set()
    # By the profiles' match ranks (Salesforce first), so a record met later in the same
    # cycle (a HubSpot contact) finds the person an earlier one made.
    for system, object_name in sorted(store.persons.queued_objects(),
                                      key=lambda k: (match_rank(*k), k)):
        after: str | None = None
        while ids := store.persons.queued_ids(system, object_name, after, CHUNK):
            _match_chunk(store, [(system, object_name, rid) for rid in ids], now, result,
                         emails)
            after = ids[-1]
    result.ambiguous = len(emails)
    result.dirty = store.persons.dirty_count()
    if result.ambiguous:
        log.warning("ambiguous e-mail matches recorded", count=result.ambiguous)
    return result


def _match_chunk(store: StateStore, changed: list[Ref], now: datetime, result: MatchResult,
                 ambiguous: set[str]) -> None:
    """Match one chunk of queued refs of one object (activities queue the records they point
    at: those records' persons changed too)."""
    rows = _changed_person_rows(store, changed)
    matcher = _matcher_for(store, changed, rows)
    dirty = {matcher.place(row) for row in rows}
    dirty.update(matcher.links[ref] for ref in changed if ref in matcher.links)
    real_ids = store.persons.create(matcher.new_keys, now=now)

    def resolve(pid: int) -> int:
        return real_ids[-pid - 1] if pid < 0 else pid

    store.persons.link([(s, o, r, resolve(pid), how)
                        for (s, o, r), pid, how in matcher.new_links], now=now)
    for email, detail in matcher.flags:
        store.flags.flag("ambiguous_email", AMBIGUOUS + email, detail, now=now)
    store.persons.mark_dirty(resolve(pid) for pid in dirty)
    store.persons.matched(changed)
    result.new_persons += len(real_ids)
    ambiguous.update(email for email, _ in matcher.flags)


def _matcher_for(store: StateStore, changed: list[Ref], rows: list[MirrorRow]) -> _Matcher:
    """The links and e-mail holders this chunk's records can meet: their own links, those of
    the records they name by cross id, and those of every live person record sharing one of
    their e-mails."""
    by_email: dict[str, list[Ref]] = defaultdict(list)
    for system, object_name, remote_id, key in store.mirror.email_holders(
            {row.email_key for row in rows if row.email_key}):
        if is_person(system, object_name):
            by_email[key].append((system, object_name, remote_id))
    wanted = set(changed)
    wanted.update(ref for row in rows for ref in cross_refs(row.system, row.object, row.fields))
    wanted.update(ref for refs in by_email.values() for ref in refs)
    return _Matcher(store.persons.links_of(wanted), by_email)


def _unique_email(system: str) -> bool:
    """The system itself refuses a second record with one e-mail (HubSpot contacts)."""
    profile = profile_of(system)
    return profile is not None and profile.unique_email


def _changed_person_rows(store: StateStore, changed: list[Ref]) -> list[MirrorRow]:
    """The chunk's live person records, in id order (one object per chunk)."""
    people = [ref for ref in changed if is_person(ref[0], ref[1])]
    if not people:
        return []
    system, object_name = people[0][0], people[0][1]
    # only the fields matching reads: the cross ids (the e-mail key is a column)
    profile = profile_of(system)
    named = [c.field for c in (profile.cross_ids if profile else ()) if c.object == object_name]
    rows = store.mirror.match_rows(system, object_name, [rid for _s, _o, rid in people], named)
    return sorted((r for r in rows if not r.deleted), key=lambda r: r.remote_id)
