"""Connection failures that a setting fixes: a host name that does not resolve, a refused
connection. They name the host and the setting to check; retrying the same call at once
would only delay that message, so they stop this system's work for the cycle (the next cycle
tries again, which also covers a passing DNS outage).

Both SDKs wrap the socket error (requests in urllib3 in ``socket.gaierror``; urllib3 in
``MaxRetryError``), so the cause is found by walking the exception chain and the texts.
"""

from __future__ import annotations

import re
import socket
from typing import Literal

from syncagent.errors import FatalError

Failure = Literal["dns", "refused"]
_DNS_TEXT = ("Name or service not known", "nodename nor servname", "Failed to resolve",
             "Temporary failure in name resolution", "getaddrinfo failed",
             "No address associated with hostname", "NameResolutionError")
_HOST = (re.compile(r"Failed to resolve '([^']+)'"), re.compile(r"host='([^']+)'"))


class UnreachableHost(FatalError):
    """The remote host cannot be reached at all (DNS or a refused connection)."""


def unreachable(exc: BaseException, *, system: str, operation: str,
                setting: str) -> UnreachableHost | None:
    """An UnreachableHost error when ``exc`` is a DNS failure or a refused connection."""
    failure = _failure(exc)
    if failure is None:
        return None
    host = _host(exc) or "the configured host"
    if failure == "dns":
        message = f"{system} {operation}: the host name {host} does not resolve (DNS)"
        hint = (f"Check {setting}: the host name is wrong, or this machine's DNS or proxy "
                "cannot resolve it.")
    else:
        message = f"{system} {operation}: {host} refused the connection"
        hint = (f"Check {setting} (host and port) and that a firewall or proxy lets this "
                "machine reach it.")
    return UnreachableHost(message, hint=hint, system=system, operation=operation, host=host,
                           setting=setting, code=f"UNREACHABLE_{failure.upper()}")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        todo.extend(a for a in current.args if isinstance(a, BaseException))
    return seen


def _failure(exc: BaseException) -> Failure | None:
    chain = _chain(exc)
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "dns"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "refused"
    text = " ".join(str(e) for e in chain)
    if any(marker in text for marker in _DNS_TEXT):
        return "dns"
    if "Connection refused" in text or "Errno 111" in text or "Errno 61" in text:
        return "refused"
    return None


def _host(exc: BaseException) -> str | None:
    for error in _chain(exc):
        for pattern in _HOST:
            found = pattern.search(str(error))
            if found:
                return found.group(1)
        host = getattr(getattr(error, "pool", None), "host", None)
        if isinstance(host, str):
            return host
    return None
