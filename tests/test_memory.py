"""Process-level malloc set-up (syncagent/memory.py): threads share a few arenas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from syncagent import memory

ROOT = Path(__file__).resolve().parents[1]

# Eight threads allocate at once (1 KB objects: above Python's small-object size, so from
# malloc), then the process counts glibc's thread arenas: each is a 64 MB-aligned anonymous
# mapping (HEAP_MAX_SIZE), readable and writable where it is in use.
CHILD = """
import sys, threading
from syncagent import memory
if sys.argv[1] == "limit":
    assert memory.limit_arenas(2)
ready, done = threading.Barrier(8), threading.Barrier(8)
kept = []
def work():
    ready.wait()
    kept.append([bytes(1000 + i % 7) for i in range(5000)])
    done.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
arenas = 0
for line in open("/proc/self/maps"):
    parts = line.split()
    start = int(parts[0].split("-")[0], 16)
    if len(parts) == 5 and parts[1] == "rw-p" and start % (64 << 20) == 0:
        arenas += 1
print(arenas)
"""


def _arenas(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return int(out.stdout.strip())


@pytest.mark.skipif(memory._glibc() is None,
                    reason="glibc only")
def test_threads_share_the_arenas_the_limit_allows() -> None:
    unlimited, limited = _arenas("default"), _arenas("limit")
    assert unlimited >= 4            # glibc gives each new thread an arena of its own
    assert limited <= 1              # the main arena is the heap; one more for the threads


def test_without_glibc_nothing_is_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    assert memory.limit_arenas() is False
