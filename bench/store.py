"""Benchmark of the state store: mirror upserts and outbox claims, on SQLite and Postgres.

Prints one JSON object. Postgres figures are skipped (with the reason) when the server at
$SYNCAGENT_TEST_POSTGRES (default postgresql+psycopg://postgres@127.0.0.1:5432/test) is absent.

    python bench/store.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from state.store import MirrorRow, NewOutboxRow, StateStore

POSTGRES = os.environ.get("SYNCAGENT_TEST_POSTGRES",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 1, tzinfo=UTC)
PAGE = 2_000  # one Salesforce query page: what pull commits per transaction
CLAIM = 200  # one sObject Collections call: what push claims at a time


def _rows(n: int, offset: int = 0) -> list[MirrorRow]:
    return [MirrorRow("salesforce", "Lead", f"00Q{i:015d}",
                      {"Id": f"00Q{i:015d}", "Email": f"p{i}@example.com", "Title": "VP Sales",
                       "NumberOfEmployees": i % 5000, "Status": "Open - Not Contacted"},
                      T0 + timedelta(seconds=i + offset), email_key=f"p{i}@example.com")
            for i in range(n)]


def bench(url: str, rows: int) -> dict[str, float]:
    store = StateStore(url)
    store.upgrade()
    records = _rows(rows)
    started = time.perf_counter()
    for start in range(0, rows, PAGE):
        store.mirror.upsert(records[start:start + PAGE])
    insert_s = time.perf_counter() - started
    records = _rows(rows, offset=10)
    started = time.perf_counter()
    for start in range(0, rows, PAGE):
        store.mirror.upsert(records[start:start + PAGE])
    update_s = time.perf_counter() - started
    outbox_rows = min(rows, 20_000)
    store.outbox.enqueue([NewOutboxRow("salesforce", "Lead", "update", {"Lead_Score__c": i},
                                       f"k{i}", remote_id=f"00Q{i}")
                          for i in range(outbox_rows)])
    started = time.perf_counter()
    claimed = 0
    while batch := store.outbox.claim("bench", CLAIM):
        claimed += len(batch)
    claim_s = time.perf_counter() - started
    store.dispose()
    return {"mirror_insert_rows_per_s": round(rows / insert_s),
            "mirror_upsert_rows_per_s": round(rows / update_s),
            "outbox_claim_rows_per_s": round(claimed / claim_s),
            "outbox_claimed": claimed}


def _postgres_schema_url() -> tuple[str, str] | None:
    try:
        import psycopg

        conninfo = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        return f"{POSTGRES}?options=-csearch_path%3D{schema}", schema
    except Exception as exc:
        print(f"postgres skipped: {exc}", file=sys.stderr)
        return None


def _drop_schema(schema: str) -> None:
    import psycopg

    conninfo = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    figures: dict[str, object] = {"rows": args.rows, "page_rows": PAGE, "claim_batch": CLAIM}
    with tempfile.TemporaryDirectory() as folder:
        figures["sqlite"] = bench(f"sqlite:///{folder}/bench.db", args.rows)
    target = _postgres_schema_url()
    if target is None:
        figures["postgres"] = "skipped: server not reachable"
    else:
        url, schema = target
        try:
            figures["postgres"] = bench(url, args.rows)
        finally:
            _drop_schema(schema)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
