"""The doctor's rows that concern the mapping files, as `file:line: problem; fix` lines."""

from __future__ import annotations

from syncagent.preflight.checks import OK, Row


def mapping_problems(rows: list[Row]) -> list[str]:
    """One line per unmet requirement that a mapping file names: a mapped field or property
    (its line), or each value missing from a picklist (the line that names the value)."""
    out: list[str] = []
    for row in rows:
        if row.status == OK:
            continue
        placed = [v for v in row.missing_values if v.where is not None]
        if placed:
            for value in placed:
                out.append(f"{value.where}: {value.value!r} is missing from "
                           f"{row.subject} ({row.symbol} {row.status}); {row.fix}")
        elif row.where is not None:
            out.append(f"{row.where}: {row.subject}: {row.detail} ({row.symbol} "
                       f"{row.status}); {row.fix}")
    return out
