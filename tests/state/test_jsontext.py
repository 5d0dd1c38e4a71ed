"""state/jsontext.loads reads every JSON text as json.loads does, value and error alike (it
calls json's C scanner itself and leaves whatever that scanner does not read whole to
json.loads); the state DB's engine decodes its JSON columns with it, on SQLite and on
Postgres (psycopg's JSONB loader), and the reads that decode the driver's text themselves
(db.column_reader) use it too."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from state import jsontext
from state import models as m
from state.activities import sqlite_utc
from state.common import table_of
from state.db import column_reader
from state.mirror import upsert_activities
from state.store import ActivityRow, MirrorRow, StateStore

GOOD = ['{"a": 1, "b": [true, false, null], "c": {"d": "é😀\\u0000"}}', "{}", "[]", "null",
        "0", "-1.5e300", '"text"', "NaN", "-Infinity", "1" * 400, "1.7976931348623157e308",
        '{"a": 1, "a": 2}', '  {"a": 1}  ', '\n[1]\t', '{"x": "\\ud83d\\ude00"}']
BAD = ["", " ", "{", '{"a": 1} x', "[1] [2]", "\ufeff{}", "{'a': 1}", "[1,]", "nul",
       '"\x01"', "1 2", "{} {}"]


def _outcome(loads: Any, text: Any) -> tuple[str, Any]:
    try:
        value = loads(text)
    except Exception as exc:   # the same type and message, wherever it stopped
        return "error", (type(exc), str(exc))
    return "value", (type(value), repr(value))


@pytest.mark.parametrize("text", GOOD + BAD)
def test_loads_is_json_loads_for_text(text: str) -> None:
    assert _outcome(jsontext.loads, text) == _outcome(json.loads, text)


@pytest.mark.parametrize("data", [t.encode() for t in GOOD + BAD] + [
    b"\xef\xbb\xbf{}", '{"a": "é"}'.encode("utf-16"), '{"a": 1}'.encode("utf-16-le"),
    '{"a": 1}'.encode("utf-32"), b'{"a": "\xff"}', b'"\xed\xa0\xbd"', bytearray(b"[1]")])
def test_loads_is_json_loads_for_bytes(data: bytes) -> None:
    # psycopg hands JSONB over as bytes: BOMs, other encodings and invalid UTF-8 as json
    assert _outcome(jsontext.loads, data) == _outcome(json.loads, data)


@pytest.mark.parametrize("value", [None, 5, 1.5, ["[1]"]])
def test_loads_of_what_is_not_text_is_json_loads(value: Any) -> None:
    assert _outcome(jsontext.loads, value) == _outcome(json.loads, value)


def test_the_scanner_keeps_no_keys_between_values() -> None:
    first, second = jsontext.loads('{"k": 1}'), jsontext.loads('{"k": 2}')
    assert (first, second) == ({"k": 1}, {"k": 2}) and first is not second


def test_the_engine_decodes_json_columns_with_it(store: StateStore) -> None:
    assert store.engine.dialect._json_deserializer is jsontext.loads
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    fields = {"Id": "1", "n": 1.1, "deep": {"x": [1, None, "é"]}, "big": 10 ** 30}
    store.mirror.upsert([MirrorRow("salesforce", "Lead", "1", fields, t0, False, "a@x.com")],
                        now=t0)
    with store.sessions.write() as session:
        upsert_activities(session, [ActivityRow("hubspot", "s1", "page_view", t0, "Lead", "1",
                                                {"url": "u", "n": [1.5]})])
    [record] = store.mirror.records("salesforce", "Lead", ["1"])
    row, marks = store.mirror.person_rows([("salesforce", "Lead", "1")])[
        ("salesforce", "Lead", "1")]
    assert record.fields == row.fields == fields and marks == {}
    assert row.modstamp == t0 and row.modstamp.tzinfo is UTC
    [(system, source, kind, when, details, pid)] = store.mirror.activity_tuples(
        [("Lead", "1")])[("Lead", "1")]
    assert (system, source, kind, details, pid) == (
        "hubspot", "s1", "page_view", {"url": "u", "n": [1.5]}, None)
    assert when == t0 and when.tzinfo is UTC


def test_column_reader_reads_sqlite_json_text_as_sqlalchemy_does(sqlite_url: str) -> None:
    """SQLite only: on Postgres the driver decodes JSONB itself."""
    dialect = StateStore(sqlite_url).engine.dialect
    fields = table_of(m.MirrorRecord).c.fields
    process = fields.type.dialect_impl(dialect).result_processor(dialect, None)
    read = column_reader(dialect, fields)
    assert process is not None and read is jsontext.read_column
    for value in [None, "{}", '{"a": [1, 2.5, null]}', "null", '"s"']:
        assert read(value) == process(value)


def test_sqlite_utc_reads_stored_text_and_a_zone_of_its_own() -> None:
    general = m.UTCDateTime().result_processor(_sqlite(), None)
    moment = sqlite_utc(general)
    for text in ["2026-05-13 12:09:26.000000", "2026-05-13 12:09:26",
                 "2026-05-13T12:09:26.123456+02:00", "2026-05-13 12:09:26Z", None]:
        got, want = moment(text), general(text)
        assert got == want and (got is None or got.tzinfo is UTC)


def _sqlite() -> Any:
    from sqlalchemy.dialects import sqlite
    return sqlite.dialect()


def test_person_rows_read_marks_and_blank_fields_as_text(store: StateStore) -> None:
    """person_rows reads the JSON columns as text on both databases (db.json_text): marks
    the agent wrote, a record with none, and a record whose fields are JSON null."""
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [MirrorRow("hubspot", "contacts", rid, {"id": rid, "f": 1.25}, t0, False, None)
            for rid in ("1", "2")]
    store.mirror.upsert(rows, now=t0)
    store.mirror.record_written("hubspot", "contacts", {"2": {"f": "x", "g": None}}, now=t0)
    read = store.mirror.person_rows([("hubspot", "contacts", "1"), ("hubspot", "contacts", "2"),
                                     ("hubspot", "contacts", "3")])
    assert set(read) == {("hubspot", "contacts", "1"), ("hubspot", "contacts", "2")}
    first, marks = read[("hubspot", "contacts", "1")]
    assert first.fields == {"id": "1", "f": 1.25} and marks == {}
    second, marks = read[("hubspot", "contacts", "2")]
    assert second.fields == {"id": "2", "f": "x", "g": None}
    at = t0.isoformat()
    assert marks == {"f": {"value": "x", "at": at}, "g": {"value": None, "at": at}}
    assert marks == store.mirror.agent_written("hubspot", "contacts", ["2"])["2"]
