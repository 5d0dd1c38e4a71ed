"""Before-images of the rows written inside savepoints, so a request can be undone.

An allOrNone request (or a composite call) writes record by record; when one record fails,
Salesforce leaves nothing behind. The store records each row as it was before its first
write after a savepoint, and rolling back puts those images back, newest first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

Record = dict[str, Any]
# (sObject name, record id, the row before the write or None if it did not exist, and when
# it went to the recycle bin, if it was there)
Entry = tuple[str, str, Record | None, datetime | None]


class Journal:
    """Nested savepoints over one list of before-images; empty (None) outside any savepoint,
    so writes made outside a request (seeding, simulations) cost nothing."""

    def __init__(self) -> None:
        self.entries: list[Entry] | None = None
        self._depth = 0

    def savepoint(self) -> int:
        """Start (or nest into) before-image recording; returns the mark to roll back to."""
        if self.entries is None:
            self.entries = []
        self._depth += 1
        return len(self.entries)

    def release(self, mark: int) -> None:
        """Keep the writes made since the savepoint."""
        del mark
        self._depth -= 1
        if self._depth == 0:
            self.entries = None

    def take_since(self, mark: int) -> list[Entry]:
        """The entries recorded since the mark, oldest first, removed from the journal."""
        entries = self.entries or []
        undo, entries[mark:] = entries[mark:], []
        return undo
