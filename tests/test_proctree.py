"""The memory of a process tree (bench/proctree.py): a forked child's pages are split, its
own writes are its own."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from bench.proctree import TreeMemory, _memory_kb

MB = 1024
PAGE = 4096


def _written(buffer: bytearray | memoryview) -> bytearray | memoryview:
    """``buffer`` with one byte of each of its pages written."""
    buffer[::PAGE] = b"\x01" * len(range(0, len(buffer), PAGE))
    return buffer


def _tree_of_two(ready: int, stop: int) -> None:
    """In a forked process: hold 40 MB, fork a child that rewrites 30 MB of it and allocates
    20 MB more, say so on ``ready``, and end both when ``stop`` closes. Never returns."""
    held = _written(bytearray(40 << 20))
    child = os.fork()
    if child == 0:   # no temporaries: only these pages are written
        _written(memoryview(held)[: 30 << 20])
        extra = _written(bytearray(20 << 20))
        os.write(ready, b"1")
        signal.pause()
        os._exit(len(extra))
    os.read(stop, 1)   # returns when the test closes its end
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    os._exit(0)


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux only")
def test_a_forked_childs_writes_are_its_private_memory() -> None:
    """The root holds 40 MB; its child rewrites 30 MB of it (copied on write) and allocates
    20 MB more. The tree's PSS counts the shared 10 MB once: root 40 + child 50; the summed
    RSS counts the shared pages twice. The tree is rooted in a process of its own: the test
    runner may have children of its own (a sandbox, a browser) that are no part of it."""
    ready_r, ready_w = os.pipe()
    stop_r, stop_w = os.pipe()
    root = os.fork()
    if root == 0:
        os.close(ready_r)
        os.close(stop_w)   # or the root's own copy would keep its read from ending
        _tree_of_two(ready_w, stop_r)
    try:
        assert os.read(ready_r, 1) == b"1"   # the child has written its 50 MB
        with TreeMemory(root, every=0.05) as tree:
            time.sleep(0.5)
    finally:
        os.close(stop_w)
        os.waitpid(root, 0)
        for end in (ready_r, ready_w, stop_r):
            os.close(end)
    parts = tree.peak_parts_mb()
    assert parts["workers"] == 1
    assert 48 <= parts["workers_private"] <= 60          # 30 copied + 20 new
    assert tree.pss_kb >= (40 + 50) * MB                 # shared pages counted once
    assert tree.rss_kb >= tree.pss_kb + 8 * MB           # ... and twice in RSS
    assert parts["agent_pss"] * MB <= tree.pss_kb


def test_an_ended_unreaped_child_counts_as_nothing_and_sampling_goes_on() -> None:
    """A worker that ended and is not yet reaped (a zombie) has a status file with no memory
    lines: it counts as zero, and the sampler keeps sampling the rest of the tree."""
    child = os.fork()
    if child == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while "Z" not in _state(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "Z" in _state(child), "the child never became a zombie"
        assert _memory_kb(child) == (0, 0, 0)
        with TreeMemory(os.getpid(), every=0.01) as tree:
            time.sleep(0.2)
            assert tree._thread.is_alive()
        assert tree.rss_kb > 0
    finally:
        os.waitpid(child, 0)


def _state(pid: int) -> str:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(line for line in status.splitlines() if line.startswith("State:"))
