"""Claims of a process that died on this host go back to the queue at once; every other
claim (a live process, another host) waits out its window."""

from __future__ import annotations

import socket
import subprocess
import sys

from state.store import NewOutboxRow, StateStore
from syncagent.pipeline.push import release_orphaned_claims


def _rows(prefix: str, n: int) -> list[NewOutboxRow]:
    return [NewOutboxRow("salesforce", "Lead", "update", {"Rating": f"v{i}"},
                         f"{prefix}:{i}", remote_id=f"00Q{prefix}{i}") for i in range(n)]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_a_dead_local_processs_claims_are_released(store: StateStore) -> None:
    host = socket.gethostname()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claimants = {"dead": f"{host}:{_dead_pid()}", "live": f"{host}:{live.pid}",
                     "remote": f"elsewhere-{host}:{_dead_pid()}", "odd": "agent"}
        for name, holder in claimants.items():
            store.outbox.enqueue(_rows(name, 3))
            assert len(store.outbox.claim(holder, 3, claim_seconds=600)) == 3

        assert release_orphaned_claims(store) == 3

        held = store.outbox.claim_holders()
        assert claimants["dead"] not in held
        assert {claimants[n] for n in ("live", "remote", "odd")} == set(held)
        assert store.outbox.counts() == {"pending": 3, "in_flight": 9}
        retaken = store.outbox.claim("next", 10, claim_seconds=600)
        assert sorted(item.remote_id or "" for item in retaken) == \
            ["00Qdead0", "00Qdead1", "00Qdead2"]
        assert {item.attempts for item in retaken} == {1}, "the killed attempt is not counted"
    finally:
        live.kill()
        live.wait()
