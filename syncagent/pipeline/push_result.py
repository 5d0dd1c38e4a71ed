"""What a push did: written, created, rejected and retried rows, and what stopped it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connectors.base import FieldError
from syncagent.errors import SyncAgentError


@dataclass
class PushResult:
    written: Counter[str] = field(default_factory=Counter)
    created: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    retried: int = 0
    stopped: dict[str, str] = field(default_factory=dict)
    list_changes: Counter[str] = field(default_factory=Counter)  # list -> members changed
    # fields a connector left out to get a record written:
    # (system, object, record id, error, value sent, person id)
    dropped: list[tuple[str, str, str | None, FieldError, Any, int | None]] = field(
        default_factory=list)
    created_persons: set[int] = field(default_factory=set)  # persons given a new record
    created_refs: list[tuple[str, str, str]] = field(default_factory=list)  # what was created
    # system -> the error that stopped it (the cycle decides whether `run` must stop)
    stop_errors: dict[str, SyncAgentError] = field(default_factory=dict)
    # steps that raised something unexpected: the cycle is recorded `failed`
    failures: list[dict[str, Any]] = field(default_factory=list)

    def merge(self, other: PushResult) -> None:
        self.written.update(other.written)
        self.created.update(other.created)
        self.rejected += other.rejected
        self.retried += other.retried
        self.stopped.update(other.stopped)
        self.list_changes.update(other.list_changes)
        self.stop_errors.update(other.stop_errors)
        self.failures += other.failures
        self.dropped.extend(other.dropped)
        self.created_persons.update(other.created_persons)
        self.created_refs.extend(other.created_refs)
