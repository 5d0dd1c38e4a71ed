"""Fixtures of the learn tests: the shipped rules and synthetic persons files."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncagent.engine import Rules, load_rules
from syncagent.learn.persons import LabelledPerson, read_persons
from tests.learn.world import write_world

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "mappings"


@pytest.fixture(scope="session")
def rules() -> Rules:
    return load_rules(SHIPPED)


@pytest.fixture(scope="session")
def world_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 synthetic persons (seed 11) with a learnable outcome."""
    return write_world(tmp_path_factory.mktemp("world") / "persons.jsonl", 3000, seed=11)


@pytest.fixture(scope="session")
def world(world_file: Path, rules: Rules) -> list[LabelledPerson]:
    return read_persons(world_file, rules)
