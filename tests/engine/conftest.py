"""Shared helpers for the engine tests: the shipped rules and tiny builders."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncagent.engine import Rules, load_rules

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "mappings"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def rules() -> Rules:
    """The shipped mapping files, loaded once."""
    return load_rules(SHIPPED)


@pytest.fixture
def mappings_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped mapping files."""
    target = tmp_path / "mappings"
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns("examples", "schema",
                                                                    "README.md"))
    return target
