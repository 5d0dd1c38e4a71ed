"""The persons file: preview takes a document with an outcome; bad lines name their line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from syncagent.cli import app
from syncagent.engine import Rules
from syncagent.errors import ConfigError
from syncagent.learn.persons import read_persons
from tests.learn.conftest import SHIPPED

GOOD = {"person_id": "p1", "now": "2026-11-02T09:00:00Z", "outcome": True,
        "profile": {"email": "a@b.example", "title": "VP Marketing"},
        "activities": [{"kind": "form_submission", "occurred_at": "2026-11-01T09:00:00Z"}]}


def _file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "persons.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(("line", "says"), [
    ("{not json", "line 2:1"),
    (json.dumps({**GOOD, "outcome": "yes"}), "outcome must be true or false"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "outcome"}), "outcome must be"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "now"}), "now (the snapshot time)"),
    (json.dumps([1, 2]), "must be a JSON object"),
    (json.dumps({**GOOD, "activities": [{"kind": "x"}]}), "activities.0.occurred_at"),
    (json.dumps({**GOOD, "created_at": "2026-10-01T09:00:00"}), "created_at"),   # no zone
])
def test_a_bad_line_is_an_error_naming_the_file_and_line(tmp_path: Path, rules: Rules,
                                                         line: str, says: str) -> None:
    path = _file(tmp_path, json.dumps(GOOD), line)
    with pytest.raises(ConfigError) as caught:
        read_persons(path, rules)
    assert f"{path} line 2" in caught.value.message
    assert says in caught.value.message


def test_an_empty_file_is_refused(tmp_path: Path, rules: Rules) -> None:
    with pytest.raises(ConfigError, match="holds no person"):
        read_persons(_file(tmp_path, "", "  "), rules)


def test_persons_are_read_at_their_own_snapshot_with_their_label(tmp_path: Path,
                                                                 rules: Rules) -> None:
    second = {**GOOD, "person_id": "p2", "now": "2026-10-01T00:00:00+02:00", "outcome": False}
    persons = read_persons(_file(tmp_path, json.dumps(GOOD), json.dumps(second)), rules)
    assert [(p.person.person_id, p.outcome) for p in persons] == [("p1", True), ("p2", False)]
    assert persons[1].at.isoformat() == "2026-09-30T22:00:00+00:00"


def test_preview_accepts_a_document_with_an_outcome_and_ignores_it(tmp_path: Path) -> None:
    results = []
    for outcome in (True, False):
        path = tmp_path / f"p{outcome}.json"
        path.write_text(json.dumps({**GOOD, "outcome": outcome}), encoding="utf-8")
        run = CliRunner().invoke(app, ["preview", "--person", str(path), "--mappings",
                                       str(SHIPPED), "--json"])
        assert run.exit_code == 0, run.output
        results.append(json.loads(run.output)["decision"])
    assert results[0] == results[1]


def test_a_creation_time_is_read_in_utc(tmp_path: Path, rules: Rules) -> None:
    path = _file(tmp_path, json.dumps({**GOOD, "created_at": "2026-10-01T11:00:00+02:00"}),
                 json.dumps(GOOD))
    known, unknown = read_persons(path, rules)
    assert known.person.created_at is not None
    assert known.person.created_at.isoformat() == "2026-10-01T09:00:00+00:00"
    assert unknown.person.created_at is None
