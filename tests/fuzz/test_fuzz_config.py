"""Config file fuzz: random YAML trees and raw bytes (bad encodings, deep nesting, aliases)
give ConfigError in one line, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given

from syncagent.settings import load_settings
from tests.fuzz.conftest import FUZZ
from tests.fuzz.guard import only_our_errors
from tests.fuzz.strategies import config_bytes, config_trees


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("SYNCAGENT_"):
            monkeypatch.delenv(name)


def _load(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    load_settings(path)


@FUZZ
@given(config_trees)
def test_fuzzed_config_trees_give_config_errors(tmp_path_factory: Any, tree: Any) -> None:
    path = tmp_path_factory.mktemp("cfg") / "syncagent.yaml"
    try:
        content = yaml.safe_dump(tree, allow_unicode=False).encode()
    except yaml.YAMLError:
        return  # not representable as YAML: nothing a user could write
    only_our_errors("config", lambda: _load(path, content))


@FUZZ
@given(config_bytes)
def test_fuzzed_config_bytes_give_config_errors(tmp_path_factory: Any, content: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "syncagent.yaml"
    only_our_errors("config_bytes", lambda: _load(path, content))
