"""Postgres: a chunk of rows inserted by one statement, each column bound as one array.

An executemany costs the server a statement per row (parse of the bind message, plan, the
executor's start and end; ~40 us each on a rescore's commit, more than the insert itself),
even pipelined and prepared. ``INSERT .. SELECT .. FROM unnest(arrays) .. ON CONFLICT ..``
inserts the same rows in the same order, each taking its id from the sequence as before
(a row ignored by ON CONFLICT DO NOTHING uses one up, as it did), in one statement.

What stays as it was: a row whose key an earlier row of the same chunk took is ignored by DO
NOTHING as before, but DO UPDATE refuses to touch a row twice in one statement, so a chunk
with a repeated key goes row by row (`repeats`); a column whose values are not all of one
kind (the driver types an array by its first value) too (`uniform`), and so does a column
that is itself an ARRAY (`array_sql`: unnest cannot carry an array per row).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

#: ``%(name)s`` or ``%(name)s::TYPE``: one value of a compiled INSERT's VALUES.
_VALUE = re.compile(r"%\(([^)]+)\)s(::[A-Z][A-Z0-9 ]*)?")

#: A type's length or precision, ``(40)`` or ``(10, 2)``.
_LENGTH = re.compile(r"\(\d+(?:, ?\d+)?\)")


def array_sql(sql: str, types: Mapping[str, str]) -> str | None:
    """A compiled single-row INSERT (pyformat, as SQLAlchemy renders it for psycopg) as the
    same INSERT of arrays: each value of the rows (the keys of ``types``, each with the SQL
    type of its array's items) read from ``unnest`` of its own array parameter (named as the
    key, ``%(key)b``: bound in binary), every other value as it was, with its cast (JSON
    goes as TEXT and is cast to JSONB item by item: the server's cast of a whole JSONB
    array cost it a third more). None when the SQL is not of the plain
    ``INSERT INTO t (..) VALUES (..) [ON CONFLICT ..]`` form this reads."""
    head, marker, rest = sql.partition(") VALUES (")
    if not marker or not head.startswith("INSERT INTO ") or "RETURNING" in rest:
        return None
    if any("[" in kind for kind in types.values()):
        return None   # an ARRAY column: unnest would spread each row's array over rows
    inner, tail = _values(rest)
    if inner is None:
        return None
    keys, wanted, exprs = list(types), set(types), []
    arrays: list[tuple[str, str]] = []
    for expr in inner.split(", "):
        match = _VALUE.fullmatch(expr)
        if match is None or match.group(1) not in wanted:
            if "%(" in expr and match is None:
                return None   # a value this cannot tell apart from the rows' (never seen)
            exprs.append(expr)
            continue
        column = f"c{len(arrays)}"
        exprs.append(f"v.{column}{match.group(2) or ''}")
        # without its length: an explicit cast to VARCHAR(4) would cut a longer text,
        # which the column's own (assignment) cast refuses, as the row by row insert did
        unbounded = _LENGTH.sub("", types[match.group(1)])
        # in binary: no quoting of each text in an array literal (JSON is full of quotes;
        # in text the driver escaped them in Python, ~14 us a 2 KB value)
        arrays.append((f"%({match.group(1)})b::{unbounded}[]", column))
        wanted.discard(match.group(1))
    if wanted or any(f"%({key})s" in tail for key in keys):
        return None   # a key bound twice, or not in the VALUES: left to executemany
    return (f"{head}) SELECT {', '.join(exprs)} FROM unnest("
            f"{', '.join(a for a, _ in arrays)}) AS v({', '.join(c for _, c in arrays)})"
            f"{tail}")


def _values(rest: str) -> tuple[str | None, str]:
    """The text inside VALUES ( .. ) and what follows its closing parenthesis."""
    depth = 0
    for at, char in enumerate(rest):
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return rest[:at], rest[at + 1:]
            depth -= 1
    return None, ""


def uniform(column: Sequence[Any]) -> bool:
    """Whether the column's values other than None are all of one kind."""
    kinds = set(map(type, column))
    kinds.discard(type(None))
    return len(kinds) <= 1


def repeats(columns: Sequence[Sequence[Any]]) -> bool:
    """Whether two rows have the same values in these columns (a conflict key's)."""
    if len(columns) == 1:
        return len(set(columns[0])) < len(columns[0])
    return len(set(zip(*columns, strict=True))) < len(columns[0])
