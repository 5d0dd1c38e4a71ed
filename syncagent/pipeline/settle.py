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

#: Ids fetched and mirrored together: a multiple of both systems' read batches (HubSpot 100,
#: Salesforce 200 a query), so chunking costs no extra call.
READ_BACK_CHUNK = 1_000


def read_back(connectors: Sequence[Connector], store: StateStore,
              refs: list[tuple[str, str, str]], persons: Iterable[int]) -> None:
    """Mirror created records as the remote holds them.

    Their persons are marked dirty first: if the process dies before they are planned again,
    the next cycle still evaluates them (the next read of these records is an echo of what
    the mirror now holds, which would not)."""
    store.persons.mark_dirty(persons)
    for connector in connectors:
        by_object: dict[str, list[str]] = defaultdict(list)
        for system, object_name, record_id in refs:
            if system == connector.system:
                by_object[object_name].append(record_id)
        for object_name, ids in by_object.items():
            if not _mirror_fetched(connector, store, object_name, ids):
                break


def _mirror_fetched(connector: Connector, store: StateStore, object_name: str,
                    ids: list[str]) -> bool:
    """Fetch and mirror the records a chunk of ids at a time (a backfill creates thousands:
    holding them all at once grew the agent's memory with the org). False when the
    connector failed: the next pull reads them anyway."""
    for start in range(0, len(ids), READ_BACK_CHUNK):
        try:
            records = connector.fetch(object_name, ids[start:start + READ_BACK_CHUNK])
        except SyncAgentError as error:
            log.warning("read-back skipped", **error.as_dict(system=connector.system))
            return False
        store.mirror.upsert([mirror_row(r) for r in records])
    return True
