"""`preview --person` fuzz: mutated person documents (malformed routing_state, NaN, huge
numbers, NUL, surrogates, deep nesting) give the project's own one-line errors, never a
crash; the same through the JSON text a user would hand in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncagent.engine import Rules, evaluate, load_rules
from syncagent.engine.person_file import parse_person, read_person_json
from syncagent.errors import ConfigError
from tests.fuzz.conftest import FUZZ
from tests.fuzz.guard import only_our_errors
from tests.fuzz.strategies import ROOT, person_documents
from tests.shown import one_line_each

RULES: Rules = load_rules(ROOT / "mappings")


def _preview(data: Any) -> None:
    person, now, routing, users = parse_person(data, RULES, "person.json")
    decision, state = evaluate(person, RULES, now, routing, users)
    json.dumps({"decision": decision.to_dict(), "routing_state": state.to_dict()})


@FUZZ
@given(person_documents)
def test_fuzzed_person_documents_never_crash_preview(document: Any) -> None:
    only_our_errors("preview", lambda: _preview(document))


@FUZZ
@given(person_documents, st.sampled_from(["plain", "nan", "deep"]))
def test_fuzzed_person_json_text_never_crashes_preview(document: Any, twist: str) -> None:
    def case() -> None:
        text = json.dumps(document, allow_nan=True)
        if twist == "nan":
            text = text.replace('"Title": "VP Marketing"', '"Title": NaN', 1)
        elif twist == "deep":
            text = '{"person_id": "x", "profile": ' + "[" * 100_000 + "]" * 100_000 + "}"
        _preview(read_person_json(text, "person.json"))

    only_our_errors("preview_text", case)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"person_id": "x", "profile": {"employees": NaN}}', "NaN is not a JSON number"),
    ('{"person_id": "x", "profile": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too"),
    ('{"person_id": "x", "routing_state": {"weights": {"pool": [1, 2]}}}', "routing_state"),
    ('{"person_id": "x", "routing_state": "round-robin"}', "routing_state"),
    ('{"person_id": "x",', "not valid JSON"),
])
def test_known_preview_crashes_are_one_line_errors(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _preview(read_person_json(text, "person.json"))
    assert expected in caught.value.message and one_line_each(caught.value)


def test_preview_command_gives_one_line_for_a_malformed_routing_state(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from syncagent.cli import app

    example = json.loads((ROOT / "mappings" / "examples" / "person.json").read_text())
    example["routing_state"] = {"day": "2026-11-25", "assigned": {"u": "many"}}
    person = tmp_path / "person.json"
    person.write_text(json.dumps(example))
    result = CliRunner().invoke(app, ["preview", "--person", str(person),
                                      "--mappings", str(ROOT / "mappings")])
    assert result.exit_code == 1 and "routing_state.assigned.u" in result.output
    assert "Traceback" not in result.output


def test_a_key_holding_a_newline_is_shown_escaped_on_one_line() -> None:
    """Found by the preview fuzz suite: a routing_state key with a newline split the error."""
    text = json.dumps({"person_id": "x", "routing_state": {"weights\n": {}}})
    with pytest.raises(ConfigError) as caught:
        _preview(read_person_json(text, "person.json"))
    assert one_line_each(caught.value) and "weights\\n" in caught.value.message
