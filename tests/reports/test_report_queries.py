"""The reports' queries (state/reports.py) and the creation times they filter on: what the
pull stores, what migration 0005 backfills, and who counts as created in a period (SQLite
and Postgres).

Worst inputs first: creation times that are garbage, epoch milliseconds, too large for any
datetime; a person whose earliest record is deleted; a person whose records say nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alembic import command
from sqlalchemy import insert

from connectors.base import RemoteRecord
from state import models as m
from state.common import table_of
from state.db import alembic_config
from state.report_rows import CreatedBetween, Ids, InStages
from state.store import StateStore
from syncagent.pipeline.pull import mirror_row
from tests.reports.conftest import SEEN, at, record, seed

RAW = {  # remote id -> (system, object, its created field's raw value)
    "00Q1": ("salesforce", "Lead", "2026-11-03T10:00:00.000+0000"),
    "501": ("hubspot", "contacts", "1795507200000"),            # epoch ms: 24 Nov 08:00
    "502": ("hubspot", "contacts", "2026-11-24T08:00:00.000Z"),
    "00Q2": ("salesforce", "Lead", "yesterday"),
    "00Q3": ("salesforce", "Lead", "99999999999999999999999"),
    "00Q4": ("salesforce", "Lead", None),
}
CREATED = {"00Q1": at(3, 10), "501": at(24, 8), "502": at(24, 8), "00Q2": None,
           "00Q3": None, "00Q4": None}


def _fields(rid: str) -> dict[str, Any]:
    system, _, raw = RAW[rid]
    name = "CreatedDate" if system == "salesforce" else "createdate"
    return {"Id": rid, **({name: raw} if raw is not None else {})}


def test_the_pull_stores_each_records_creation_time() -> None:
    for rid, (system, obj, _) in RAW.items():
        row = mirror_row(RemoteRecord(system, obj, rid, _fields(rid), SEEN))
        assert row.created_at == CREATED[rid], rid


def test_migration_0005_backfills_creation_times_from_the_fields(state_url: str) -> None:
    store = StateStore(state_url)
    try:
        with store.engine.connect() as connection:
            config = alembic_config(store.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
            connection.commit()
        rows = [{"system": system, "object": obj, "remote_id": rid, "fields": _fields(rid),
                 "modstamp": SEEN, "deleted": False, "last_seen_at": SEEN,
                 "agent_written": {}, "email_key": None}
                for rid, (system, obj, _) in RAW.items()]
        with store.sessions.write() as session:
            session.execute(insert(table_of(m.MirrorRecord)), rows)
        store.upgrade()
        got = {r.remote_id: r.created_at for system in ("salesforce", "hubspot")
               for r in store.mirror.records(system)}
    finally:
        store.dispose()
    assert got == CREATED


def _person(pid: int, first_seen: datetime, *records: m.MirrorRecord) -> list[Any]:
    return [m.Person(id=pid, created_at=first_seen, dirty=False), *records,
            *(m.PersonLink(system=r.system, object=r.object, remote_id=r.remote_id,
                           person_id=pid, linked_by="email", created_at=first_seen)
              for r in records)]


def test_a_person_is_created_when_their_earliest_live_record_was(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    lead = {"CreatedDate": "2026-11-10T08:00:00.000+0000"}
    seed(store, [
        *_person(1, SEEN, record("salesforce", "Lead", "A", lead)),
        # an earlier contact: created in October, so not in November's cohort
        *_person(2, SEEN, record("salesforce", "Lead", "B", lead),
                 record("hubspot", "contacts", "1", {"createdate": "2026-10-01T00:00:00Z"})),
        # the earlier record is deleted: it no longer counts
        *_person(3, SEEN, record("salesforce", "Lead", "C", lead),
                 record("hubspot", "contacts", "2", {"createdate": "2026-10-01T00:00:00Z"},
                        deleted=True)),
        # no record says: the agent's first sight stands in
        *_person(4, at(12), record("salesforce", "Lead", "D", {"CreatedDate": "soon"})),
        *_person(5, at(12, month=10), record("salesforce", "Lead", "E", {})),
        m.Person(id=6, created_at=at(13), dirty=False),          # no records at all
    ])
    reports = store.reports
    november = CreatedBetween(at(1), at(1, month=12))
    cohort = {p.person_id: p.first_seen for p in reports.persons(november, records=False)}
    with_records = {p.person_id: [r.remote_id for r in p.records]
                    for p in reports.persons(november)}
    october = [p.person_id for p in reports.persons(CreatedBetween(at(1, month=10), at(1)))]
    store.dispose()
    assert cohort == {1: at(10, 8), 3: at(10, 8), 4: at(12), 6: at(13)}
    assert with_records == {1: ["A"], 3: ["C"], 4: ["D"], 6: []}
    assert october == [2, 5]


def test_selections_by_stage_and_by_id_read_only_those(seeded: StateStore) -> None:
    reports = seeded.reports
    open_leads = reports.persons(InStages(("MQL", "SAL"), owned=True), records=False)
    assert [p.person_id for p in open_leads] == [2, 4]
    # more ids than one IN list holds, most of them unknown
    many = Ids(tuple(range(-2000, 2000)))
    assert [p.person_id for p in reports.persons(many)] == [1, 2, 3, 4, 5]
    assert sorted(reports.steps_of(Ids((1, 4)), into=("SAL",))) == [1, 4]
    assert reports.routing_rules(Ids((1, 3, 4))) == {1: "pool-east", 4: "pool-west"}
    assert reports.last_activity(Ids((2, 4)), ["call_connected"]) == {4: at(29, 10)}


def test_the_period_holds_its_start_and_not_its_end(seeded: StateStore) -> None:
    # P1 was created 3 Nov 10:00 exactly
    reports = seeded.reports
    assert [p.person_id for p in reports.persons(CreatedBetween(at(3, 10), at(3, 11)))] == [1]
    assert [p.person_id for p in reports.persons(CreatedBetween(at(3), at(3, 10)))] == []
