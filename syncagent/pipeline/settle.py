"""Settling a cycle's creates: read the new records back so their persons can be planned
again in the same cycle (see cycle._steps and docs/connectors.md)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import structlog

from connectors.base import Connector
from state.store import StateStore
from syncagent.errors import SyncAgentError
from syncagent.pipeline.pull import mirror_row

log = structlog.get_logger(__name__)


def read_back(connectors: Sequence[Connector], store: StateStore,
              refs: list[tuple[str, str, str]], persons: Iterable[int]) -> None:
    """Mirror created records as the remote holds them (connectors that can fetch by id).

    Their persons are marked dirty first: if the process dies before they are planned again,
    the next cycle still evaluates them (the next read of these records is an echo of what
    the mirror now holds, which would not)."""
    store.persons.mark_dirty(persons)
    for connector in connectors:
        fetch = getattr(connector, "fetch", None)
        if fetch is None:
            continue
        by_object: dict[str, list[str]] = defaultdict(list)
        for system, object_name, record_id in refs:
            if system == connector.system:
                by_object[object_name].append(record_id)
        for object_name, ids in by_object.items():
            try:
                records = fetch(object_name, ids)
            except SyncAgentError as error:  # the next pull reads them anyway
                log.warning("read-back skipped", **error.as_dict(system=connector.system))
                break
            store.mirror.upsert([mirror_row(r) for r in records])
