"""JSON text read as `json.loads` reads it, for less: the stored JSON columns (a record's
fields, an activity's details) are decoded several times per person in an evaluation.

`json.loads` goes through three Python layers (its own checks, ``JSONDecoder.decode`` and
``raw_decode``, two regular-expression matches for whitespace) before the C scanner that does
the work: ~1 us a value of ~3-7 us. `loads` calls the scanner itself and hands anything it
does not read whole and cleanly (whitespace around the value, a byte-order mark, extra data,
an error, a type other than str or bytes) to `json.loads`, so its results and errors are
json's own (tests/state/test_jsontext.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

#: The scanner of a default decoder: the same parsing as `json.loads` (its memo of keys is
#: emptied after each call, in C).
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads(text: Any) -> Any:
    """``json.loads(text)``. Bytes (psycopg hands JSONB over as bytes) are read as UTF-8."""
    source = text
    if type(text) is bytes:
        try:
            text = text.decode()
        except UnicodeDecodeError:
            return json.loads(source)
    elif type(text) is not str:
        return json.loads(source)
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError):   # leading whitespace, a BOM, another encoding
        return json.loads(source)
    if end != len(text):   # trailing whitespace (fine) or extra data (json's error)
        return json.loads(source)
    return value


def read_column(value: Any) -> Any:
    """A JSON column's driver value on SQLite as SQLAlchemy's JSON type returns it: None
    stays None, text is decoded (with `loads`, the engine's deserializer: state/db.py)."""
    return None if value is None else loads(value)
