"""Values made storable: what either state DB refuses never reaches it.

PostgreSQL refuses NUL in text and jsonb (``UntranslatableCharacter``) and lone UTF-16
surrogates (``\\ud800`` escapes) in jsonb; JSON has no NaN or infinity (Postgres refuses the
``NaN`` token, SQLite's JSON functions choke on it). Remote records carry all of these, so:
- ``clean_fields`` sanitises one remote record before it is stored and says what it changed,
  for the pipeline to record as data-quality items;
- ``dumps`` is the store's JSON serializer: a fast path for clean values, a cleaning path for
  the rest, so decisions, outbox payloads and errors are safe too; made ahead of the commit
  (an evaluation worker sends it in UTF-8: pipeline/wire.as_text), its text is bound as it
  is;
- ``clean_parameters`` is the last stop before the driver for plain text columns.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring_ascii,
)
from typing import Any

#: Salesforce's longest text field (Long Text Area) holds 131,072 characters; a longer value
#: cannot be written anywhere, so the mirror keeps that much and the rest is reported.
MAX_TEXT = 131_072
REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Where a NUL or a surrogate would be escaped in JSON text: one scan of the text finds
#: neither in nearly all (~1.6 µs for a person's ~4.4 KB, where the two ``in`` tests it
#: stands before took ~4.5).
_ESCAPE = re.compile(r"\\u(?:0000|d[89a-f])")
# A lone surrogate in JSON text: a high one not followed by a low one, or a low one alone.
_LONE_ESCAPE = re.compile(r"\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})|"
                          r"(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}")


def text_problem(text: str) -> str | None:
    """Why a database would refuse this text (or None)."""
    if "\x00" in text:
        return "text holds NUL characters (removed)"
    if not text.isascii() and _SURROGATE.search(text):
        return "text holds broken UTF-16 surrogates (replaced with U+FFFD)"
    return None


def clean_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE.sub(REPLACEMENT, text)
    return text


def clean_value(value: Any) -> Any:
    """The value with every string cleaned and every NaN/infinity made None, at any depth."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(item) for item in value]
    return value


def _problem(value: Any) -> str | None:
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return f"text of {len(value):,} characters (kept the first {MAX_TEXT:,})"
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number (NaN or infinity; stored as blank)"
    if isinstance(value, Mapping | list | tuple):
        try:
            unchanged = clean_value(value) == value
        except RecursionError:
            return "a value nested too deeply to store"
        return None if unchanged else "nested value cleaned for storage"
    return None


def clean_fields(fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One record's fields made storable, and (field, reason) for each value changed."""
    if _storable_as_is(fields):
        return dict(fields), []
    return _careful_clean(fields)


def _careful_clean(fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """``clean_fields`` value by value: what changed and why."""
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in fields.items():
        name = clean_text(str(key))
        reason = _problem(value)
        if reason is None:
            out[name] = value
            continue
        problems.append((name, reason))
        if isinstance(value, str) and len(value) > MAX_TEXT:
            value = value[:MAX_TEXT]
        try:
            out[name] = clean_value(value)
        except RecursionError:
            out[name] = None
    return out, problems


_PLAIN = frozenset({str, int, bool, float, dict, type(None)})


def _storable_as_is(fields: Mapping[str, Any], nested: bool = False) -> bool:
    """True when ``clean_fields`` would change nothing: plain keys and values (a dict of them
    one level down: an activity's source row), every text checked once, joined, in C.
    A pull cleans every record it reads, nearly all clean; anything else takes the careful
    path, which says what it changed."""
    values = list(fields.values())
    kinds = set(map(type, values))
    if not kinds <= _PLAIN or (nested and dict in kinds):
        return False
    if float in kinds and not all(map(math.isfinite, (v for v in values if type(v) is float))):
        return False
    if dict in kinds and not all(_storable_as_is(v, nested=True)
                                 for v in values if type(v) is dict):
        return False
    texts = [v for v in values if type(v) is str]
    if not nested and texts and max(map(len, texts)) > MAX_TEXT:
        return False
    keys = list(fields)
    if set(map(type, keys)) - {str}:
        return False
    joined = "".join(keys) + "".join(texts)
    return "\x00" not in joined and (joined.isascii() or not _SURROGATE.search(joined))


def _fallback(value: Any) -> str:
    """What the encoder does not know, as its text (``default=str``); but bytes (a JSON
    column's text made already: `dumps`) inside a dict or list would be stored as the
    string "b'...'", without a word. No path makes that; if one ever does, it fails loudly."""
    if type(value) is bytes:
        raise TypeError("JSON text made already (bytes) is a JSON column's whole value, "
                        "never a part of one: store the value itself there")
    return str(value)


#: The C encoder ``json.dumps(value, sort_keys=True, default=_fallback, allow_nan=False)`` builds
#: on every call, built once (the same text): a rescore encodes every decision's reasons
#: (~2.6 KB) and every outbox payload, and building the encoder per call cost ~20% of each
#: (measured on a rescore's chunks). Without the circular-reference bookkeeping, whose
#: state a failed call could leave behind in a shared encoder: a cycle fails as
#: RecursionError instead (clean_value, on the ValueError it raised, failed so anyway).
_ENCODE = c_make_encoder(None, _fallback, encode_basestring_ascii, None, ": ", ", ", True,
                         False, False)


def _plain_dumps(value: Any) -> str:
    return "".join(_ENCODE(value, 0))


def dumps(value: Any) -> str:
    """The store's JSON serializer: sorted keys (equal values are equal text, so SQL can
    compare them on SQLite too), never NaN, NUL or a lone surrogate. Bytes are its own text
    made already, in UTF-8 (an evaluation worker's: pipeline/wire.as_text), returned as that
    text: the commit binds them as they are (common._Slot.column), unless a path of
    SQLAlchemy's own (a statement with a Python-side default no row gives) serializes them
    here."""
    if type(value) is bytes:
        return value.decode()
    try:
        text = _plain_dumps(value)
    except ValueError:  # NaN or infinity somewhere
        return _plain_dumps(clean_value(value))
    if _ESCAPE.search(text) and ("\\u0000" in text or _LONE_ESCAPE.search(text)):
        return _plain_dumps(clean_value(value))
    return text


def clean_parameters(parameters: Any) -> Any:
    """Driver parameters (a dict, a sequence, or a list of either for executemany) with NUL
    and lone surrogates taken out of every string; unchanged objects are returned as they are."""
    if _all_clean(parameters):
        return parameters
    if isinstance(parameters, Mapping):
        if not any(_dirty(v) for v in parameters.values()):
            return parameters
        return {k: clean_text(v) if isinstance(v, str) else v for k, v in parameters.items()}
    if isinstance(parameters, Sequence) and not isinstance(parameters, str | bytes):
        if parameters and isinstance(parameters[0], Mapping | list | tuple):
            return type(parameters)(clean_parameters(p) for p in parameters)  # type: ignore[call-arg]
        if not any(_dirty(v) for v in parameters):
            return parameters
        return type(parameters)(clean_text(v) if isinstance(v, str) else v  # type: ignore[call-arg]
                                for v in parameters)
    return parameters


#: Kinds of driver parameters that hold no text to clean.
_NOT_TEXT = frozenset({int, float, bool, type(None), datetime, date, Decimal, bytes})


def clean_column(values: list[Any]) -> list[Any]:
    """One column of driver parameters (a value per row) with NUL and lone surrogates taken
    out of its strings; the same list when none holds any. Checked in C: the column's kinds,
    then its text joined once (most columns hold no text, or only clean text)."""
    kinds = set(map(type, values))
    if kinds <= _NOT_TEXT:
        return values
    if kinds <= {str, type(None)}:
        joined = "".join(filter(None, values))
    else:   # text beside other kinds, or a kind of text (a str subclass: an enum's member)
        joined = "".join([v for v in values if isinstance(v, str)])
    if "\x00" not in joined and (joined.isascii() or not _SURROGATE.search(joined)):
        return values
    return [clean_text(v) if isinstance(v, str) else v for v in values]


def _all_clean(parameters: Any) -> bool:
    """True when no string among the parameters (one level of rows deep) could be refused:
    every string joined and checked once, in C, instead of one check per value (a cycle's
    commit passes hundreds of thousands of values, nearly always clean)."""
    if isinstance(parameters, Mapping):
        rows: Sequence[Any] = [parameters]
    elif isinstance(parameters, Sequence) and not isinstance(parameters, str | bytes):
        rows = parameters if parameters and isinstance(parameters[0], Mapping | list | tuple) \
            else [parameters]
    else:
        return True
    texts = [v for row in rows for v in (row.values() if isinstance(row, Mapping) else row)
             if isinstance(v, str)]
    joined = "".join(texts)
    return "\x00" not in joined and (joined.isascii() or not _SURROGATE.search(joined))


def _dirty(value: Any) -> bool:
    return isinstance(value, str) and text_problem(value) is not None
