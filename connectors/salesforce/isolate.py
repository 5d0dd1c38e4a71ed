"""Field-level isolation: a record refused because of some fields is written without them.

Salesforce answers a collections item with ``errors: [{statusCode, message, fields}]``. When
every error of a record names fields and is about those fields alone (a field that does not
exist or the user may not write, a value a restricted picklist lacks, a string too long, a
validation rule that points at a field), the rest of the record is good: the agent's own
outputs (grade, score, stage...) must still land. Such records are sent again at once, in
as few calls as possible (all of them together, 200 a call), without the named fields; the
result then lists the dropped fields so the pipeline can record them.

Salesforce leaves ``fields`` empty for an unknown field ("No such column 'X' on sobject of type
Lead"); the name is then read from the message (the harsher case, modelled by the sandbox).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from connectors.base import FieldError, WriteItem, WriteResult

ISOLATABLE_CODES = frozenset({
    "INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "STRING_TOO_LONG", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "INVALID_TYPE_ON_FIELD_IN_RECORD",
    "NUMBER_OUTSIDE_VALID_RANGE",
})
MAX_ROUNDS = 3   # a record may reveal a second bad field once the first is gone
_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)'")

WriteMany = Callable[[Sequence[WriteItem]], list[WriteResult]]


def field_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[FieldError, ...]:
    """The record's errors as field errors, or () when any error is not about named fields."""
    out: list[FieldError] = []
    for error in errors:
        code = str(error.get("statusCode") or "")
        message = str(error.get("message") or "")
        names = [str(f) for f in error.get("fields") or [] if f]
        if not names and code == "INVALID_FIELD":
            names = _NO_SUCH_COLUMN.findall(message)
        if code not in ISOLATABLE_CODES or not names:
            return ()
        out.extend(FieldError(name, code, message) for name in names)
    return tuple(out)


def write_isolated(batch: Sequence[WriteItem], results: list[WriteResult], write: WriteMany,
                   protected: frozenset[str] = frozenset()) -> list[WriteResult]:
    """Re-send, without their refused fields, the records refused only because of fields."""
    items = list(batch)
    results = list(results)
    dropped: dict[int, tuple[FieldError, ...]] = {}
    for _ in range(MAX_ROUNDS):
        retry = _retriable(items, results, protected)
        if not retry:
            break
        trimmed = [_without(items[n], bad) for n, bad in retry]
        again = write(trimmed)
        for (n, bad), item, result in zip(retry, trimmed, again, strict=True):
            items[n] = item
            dropped[n] = dropped.get(n, ()) + bad
            results[n] = result
    for n, fields in dropped.items():
        results[n] = replace(results[n], dropped=fields + results[n].dropped)
    return results


def _retriable(items: Sequence[WriteItem], results: Sequence[WriteResult],
               protected: frozenset[str]) -> list[tuple[int, tuple[FieldError, ...]]]:
    out = []
    guarded = {name.casefold() for name in (*protected, "Id")}
    for n, (item, result) in enumerate(zip(items, results, strict=True)):
        if result.status != "rejected" or not result.field_errors:
            continue
        bad = {e.field.casefold() for e in result.field_errors}
        sent = {name.casefold() for name in item.fields}
        if bad & guarded or not bad & sent or not sent - bad:
            continue  # an id, a key, nothing of ours, or nothing left: the record is refused
        out.append((n, tuple(e for e in result.field_errors if e.field.casefold() in sent)))
    return out


def _without(item: WriteItem, bad: tuple[FieldError, ...]) -> WriteItem:
    names = {e.field.casefold() for e in bad}
    return replace(item, fields={k: v for k, v in item.fields.items()
                                 if k.casefold() not in names})
