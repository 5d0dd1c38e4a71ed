"""The persons file: JSON Lines, one ``preview --person`` document per line, each with the
snapshot time ``now`` and ``"outcome": true|false`` (what followed within the window)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from syncagent.engine.loader import Rules
from syncagent.engine.model import PersonInput
from syncagent.engine.person_file import parse_person, read_person_json
from syncagent.errors import ConfigError


@dataclass(frozen=True, slots=True)
class LabelledPerson:
    """A person as they stood at ``at`` and whether the outcome followed."""

    person: PersonInput
    at: datetime
    outcome: bool


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}",
                          hint="Pass an existing persons file (JSON Lines) with --persons."
                          ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: byte {error.start} is not UTF-8 text",
                          hint="Save the persons file as UTF-8.") from None


def read_persons(path: Path, rules: Rules) -> list[LabelledPerson]:
    """Every person of the file; a bad line is an error naming its line number."""
    out: list[LabelledPerson] = []
    for number, line in _lines(path):
        source = f"{path} line {number}"
        data = read_person_json(line, source)
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a person must be a JSON object",
                              hint="Write one person document per line.")
        outcome = data.get("outcome")
        if not isinstance(outcome, bool):
            raise ConfigError(f"{source}: outcome must be true or false (got "
                              f"{json.dumps(outcome)})",
                              hint="Label each person, or re-export with export-persons.")
        if data.get("now") is None:
            raise ConfigError(f"{source}: now (the snapshot time) is missing",
                              hint="Give each person the time it stood as, e.g. "
                              "\"now\": \"2026-11-25T09:00:00Z\".")
        person, at, _routing, _users = parse_person(data, rules, source)
        out.append(LabelledPerson(person, at, outcome))
    if not out:
        raise ConfigError(f"{path}: holds no person",
                          hint="Export one with `syncagent export-persons`.")
    return out


def write_persons(documents: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Write documents as JSON Lines; returns how many."""
    count = 0
    for doc in documents:
        out.write(json.dumps(doc, sort_keys=True, default=str) + "\n")
        count += 1
    return count
