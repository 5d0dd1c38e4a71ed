"""Which outbox rows a push while rows are still being queued sends: whole batches only, and
for a system that packs batches into one call, whole calls only (a part batch or a part call
waits for the rows still to come rather than cost a call of its own)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from connectors.base import Connector, PackedWrites, WriteOperation
from state.store import StateStore

# Creates first: the records they make are linked before anything else refers to them.
OPERATION_ORDER = {"upsert": 0, "create": 0, "update": 1, "list_add": 2, "list_remove": 2}

WRITE_OPERATIONS: dict[str, WriteOperation] = {"create": "create", "update": "update",
                                               "upsert": "upsert"}


def whole_batches(connectors: Mapping[str, Connector], store: StateStore,
                  defer: frozenset[str]) -> list[tuple[tuple[str, str, str], int | None]]:
    """The groups with at least one whole batch due, each with the rows that fill whole
    batches, in push order."""
    out = []
    for group, due in store.outbox.due_counts().items():
        connector = connectors.get(group[0])
        if connector is None or group[2] in defer:
            continue
        size = batch_size(connector, group[2])
        if due >= size:
            out.append((group, due - due % size))
    ordered = sorted(out, key=lambda g: (OPERATION_ORDER.get(g[0][2], 3), g[0][0], g[0][1]))
    return _whole_packs(connectors, ordered)


def _whole_packs(connectors: Mapping[str, Connector],
                 groups: list[tuple[tuple[str, str, str], int]]
                 ) -> list[tuple[tuple[str, str, str], int | None]]:
    """For a system that packs batches into one call, only the batches that fill whole
    calls: those past the last full call (the end of push order) wait for a later push,
    rather than take a call with room left."""
    whole: Counter[str] = Counter()
    for (system, _object, operation), rows in groups:
        connector = connectors[system]
        if isinstance(connector, PackedWrites) and operation in WRITE_OPERATIONS:
            whole[system] += rows // connector.max_batch
    spare = {system: n % connectors[system].pack_size  # type: ignore[attr-defined]
             for system, n in whole.items()}
    kept: list[tuple[tuple[str, str, str], int | None]] = []
    for group, rows in reversed(groups):
        size = connectors[group[0]].max_batch
        if spare.get(group[0]) and group[2] in WRITE_OPERATIONS:
            cut = min(spare[group[0]], rows // size)
            spare[group[0]] -= cut
            rows -= cut * size
        if rows:
            kept.append((group, rows))
    return kept[::-1]


def batch_size(connector: Connector, operation: str) -> int:
    return (connector.profile.list_batch_size if operation.startswith("list_")
            else connector.max_batch)
