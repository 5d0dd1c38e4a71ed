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


# 1 KB objects come from malloc; every 64th is kept, so no page of the heap is wholly free
# at its top and glibc's own shrink on free() returns nothing: only malloc_trim, which
# releases the free pages inside the heap, brings the RSS down.
HOLES = """
import sys
from syncagent import memory
def rss_kb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
blocks = [bytes(1000) + bytes([i % 256]) for i in range(100_000)]
kept = blocks[::64]
del blocks
before = rss_kb()
released = memory.trim() if sys.argv[1] == "trim" else False
print(before, rss_kb(), released)
"""


def _after_free(mode: str) -> tuple[int, int, str]:
    out = subprocess.run([sys.executable, "-c", HOLES, mode], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    before, after, released = out.stdout.split()
    return int(before), int(after), released


@pytest.mark.skipif(memory._glibc() is None, reason="glibc only")
def test_trim_returns_the_free_pages_inside_the_heap() -> None:
    before, after, released = _after_free("trim")
    assert released == "True"
    assert before - after > 60_000      # of ~100 MB freed, most pages go back (KB)
    kept_before, kept_after, _ = _after_free("keep")
    assert kept_before - kept_after < 5_000   # without it, free() alone keeps them


def test_trim_without_glibc_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    assert memory.trim() is False
