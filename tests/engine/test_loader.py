"""Loading the shipped rules, the JSON Schema export, and a fuzz of the loader."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncagent.engine import MappingError, load_rules
from syncagent.engine.rule_files import FILES
from syncagent.engine.schema import json_schemas

from .conftest import SHIPPED


def test_shipped_rules_load_with_the_documented_defaults() -> None:
    rules = load_rules(SHIPPED)
    assert rules.lifecycle.mql.min_grade == "B"
    assert rules.lifecycle.mql.min_score == 100
    assert [c.name for c in rules.grading.profiles[-1].criteria] == [
        "company-size", "industry", "location", "seniority", "department"]
    assert rules.scoring.segments.names.high_fit_high_intent == "sales-now"


def test_shipped_schemas_are_up_to_date() -> None:
    """mappings/schema/*.json must be what `syncagent schema` writes now."""
    for name, schema in json_schemas().items():
        shipped = json.loads((SHIPPED / "schema" / name).read_text())
        assert shipped == schema, f"run `syncagent schema` to refresh {name}"


def test_shipped_yaml_files_point_editors_at_their_schema() -> None:
    for name in FILES:
        first = (SHIPPED / name).read_text().splitlines()[0]
        assert first == ("# yaml-language-server: $schema=./schema/"
                         f"{name.removesuffix('.yaml')}.schema.json")


def test_missing_directory_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as no_dir:
        load_rules(tmp_path / "nope")
    assert "no such directory" in no_dir.value.problems[0].message
    (tmp_path / "fields.yaml").write_text((SHIPPED / "fields.yaml").read_text())
    with pytest.raises(MappingError) as missing:
        load_rules(tmp_path)
    problems = missing.value.problems
    assert {Path(p.file).name for p in problems} == set(FILES) - {"fields.yaml"}
    assert all("file is missing" in p.message for p in problems)


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    for name in FILES:
        (tmp_path / name).write_text((SHIPPED / name).read_text())
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, 9):
        refs = ",".join([f"*{chr(96 + i)}"] * 9)
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [{refs}]\n"
    (tmp_path / "nurture.yaml").write_text(bomb)
    with pytest.raises(MappingError) as caught:
        load_rules(tmp_path)
    assert "too many values" in caught.value.problems[0].message


KEYS = ["version", "fields", "name", "when", "field", "op", "value", "criteria", "profiles",
        "match", "mismatch", "points", "category", "categories", "activities", "kind", "rules",
        "assign", "pool", "pools", "tracks", "members", "user", "weight", "mql", "min_score",
        "min_grade", "decay", "half_life_days", "segments", "recency", "bands", "sla", "exit",
        "business_hours", "timezone", "days", "start", "end", "holidays", "escalate_to",
        "out_of_office", "qualify_within_days", "alert_cooldown_hours", "early",
        "within_days_of_creation", "max_points"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True), st.text(max_size=12),
                    st.sampled_from(["equals", "in", "regex", "(a+)+", "B", "+1/3", "MQL",
                                     "page_view", "contains_any", "[", "*a", "&a x",
                                     "24:00", "09:00", "mon", "Europe/London", "2026-02-30",
                                     "user:", "pool", "../zone"]))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner,
                                            max_size=5)),
    max_leaves=25)


def _load_with(replacements: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in FILES:
            (root / name).write_text(replacements.get(name, (SHIPPED / name).read_text()))
        try:
            load_rules(root)
        except MappingError as error:
            assert error.problems  # only our error, always with at least one problem


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(FILES)), documents)
def test_loader_fuzz_structured_documents(name: str, document: Any) -> None:
    """Random YAML-shaped data in any file: only MappingError, never a crash."""
    _load_with({name: yaml.safe_dump(document)})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(FILES)), st.text(max_size=200))
def test_loader_fuzz_raw_text(name: str, text: str) -> None:
    """Random text in any file: only MappingError, never a crash."""
    _load_with({name: text})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(FILES)), st.data())
def test_loader_fuzz_mutated_shipped_files(name: str, data: st.DataObject) -> None:
    """Shipped files with a line deleted, duplicated or a character changed."""
    lines = (SHIPPED / name).read_text().splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    action = data.draw(st.sampled_from(["drop", "dup", "char"]))
    if action == "drop":
        del lines[index]
    elif action == "dup":
        lines.insert(index, lines[index])
    elif lines[index]:
        pos = data.draw(st.integers(0, len(lines[index]) - 1))
        char = data.draw(st.sampled_from([":", "-", " ", "[", "{", "'", "x", "\t", "#", "9"]))
        lines[index] = lines[index][:pos] + char + lines[index][pos + 1:]
    _load_with({name: "\n".join(lines) + "\n"})


def test_fingerprint_changes_with_the_rules(mappings_copy: Path) -> None:
    before = load_rules(mappings_copy).fingerprint
    assert before == load_rules(SHIPPED).fingerprint
    text = (mappings_copy / "lifecycle.yaml").read_text().replace("min_score: 100",
                                                                  "min_score: 90")
    (mappings_copy / "lifecycle.yaml").write_text(text)
    assert load_rules(mappings_copy).fingerprint != before
