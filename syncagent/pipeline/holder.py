"""Who a process is in leases, runs and outbox claims ("host:pid"), and whether such a
process is known to be gone.

A claim made by a process that was killed would otherwise hold its rows for the whole claim
window (minutes). On the same host the operating system can tell that the process is gone,
so its rows can go back to the queue at once; claims from other hosts, or from a pid that
still runs, are left to expire.
"""

from __future__ import annotations

import os
import socket


def holder_name() -> str:
    """This process, as leases, runs and outbox claims name it: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def gone_from_this_host(holder: str) -> bool:
    """True only when `holder` names a process on this host that no longer exists.

    Anything uncertain (another host, a pid that runs, a name of another form, a process we
    may not signal) is False: releasing a live process's claim would send its batch twice.
    """
    host, _, pid_text = holder.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid() or pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, under another user
        return False
    return False
