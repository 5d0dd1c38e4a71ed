"""Throwaway Postgres schemas: each test or benchmark run gets its own empty schema in a shared
database (the server's search_path picks it), so runs never meet each other's tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


def in_schema(url: str, schema: str) -> str:
    """``url`` with every connection's search_path set to ``schema``."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3D{schema}"


def create_schema(url: str, schema: str) -> None:
    """Create ``schema`` in the database at ``url`` unless it exists (``url`` without it)."""
    _execute(url, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


@contextmanager
def scratch_schema(url: str, prefix: str) -> Iterator[str]:
    """A new, empty schema named ``prefix_<random>``; yields a URL into it and drops it (with
    everything in it) when the block ends."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    create_schema(url, schema)
    try:
        yield in_schema(url, schema)
    finally:
        _execute(url, f'DROP SCHEMA "{schema}" CASCADE')


def _execute(url: str, statement: str) -> None:
    import psycopg  # a Postgres-only helper: SQLite installs need not import the driver

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)
