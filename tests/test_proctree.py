"""The memory of a process tree (bench/proctree.py): a forked child's pages are split, its
own writes are its own."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from bench.proctree import TreeMemory

MB = 1024
PAGE = 4096


def _written(buffer: bytearray | memoryview) -> bytearray | memoryview:
    """``buffer`` with one byte of each of its pages written."""
    buffer[::PAGE] = b"\x01" * len(range(0, len(buffer), PAGE))
    return buffer


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux only")
def test_a_forked_childs_writes_are_its_private_memory() -> None:
    """The parent holds 40 MB; the child rewrites 30 MB of it (copied on write) and allocates
    20 MB more. The tree's PSS counts the shared 10 MB once: parent 40 + child 50; the summed
    RSS counts the shared pages twice."""
    held = _written(bytearray(40 << 20))
    child = os.fork()
    if child == 0:   # no temporaries: only these pages are written
        _written(memoryview(held)[: 30 << 20])
        extra = _written(bytearray(20 << 20))
        signal.pause()
        os._exit(len(extra))
    try:
        time.sleep(0.5)   # the child has written its 50 MB (in far less than this)
        with TreeMemory(os.getpid(), every=0.05) as tree:
            time.sleep(0.5)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    parts = tree.peak_parts_mb()
    assert parts["workers"] == 1
    assert 48 <= parts["workers_private"] <= 60          # 30 copied + 20 new
    assert tree.pss_kb >= (40 + 50) * MB                 # shared pages counted once
    assert tree.rss_kb >= tree.pss_kb + 8 * MB           # ... and twice in RSS
    assert parts["agent_pss"] * MB <= tree.pss_kb
    del held
