"""Run one fuzz case: the project's own errors are fine, anything else is counted and fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncagent.errors import SyncAgentError
from tests.fuzz.conftest import RAN, UNEXPECTED
from tests.shown import one_line_each, shown


def only_our_errors(suite: str, case: Callable[[], Any]) -> Any:
    RAN[suite] += 1
    try:
        return case()
    except SyncAgentError as error:
        assert one_line_each(error) or suite == "mappings", shown(error)
        return None
    except Exception as error:
        UNEXPECTED[f"{suite}:{type(error).__name__}"] += 1
        raise
