"""Who may read the dashboard.

Bound to a loopback address (127.0.0.1, ::1, localhost) the dashboard is readable by anyone
on the machine, like `syncagent status`; bound anywhere else it must have a bearer token or
basic auth in the settings (`web.token`, `web.username` + `web.password`), or it refuses to
start. Once either is set, every path asks for it except `/healthz`, which says only that the
process is up (a load balancer's liveness probe must reach it without a secret). `/readyz` and
`/metrics` stay behind auth: they describe the agent's state (failed cycles, dead letters, API
budgets), and Prometheus and Kubernetes probes can both send an Authorization header.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

from syncagent.errors import ConfigError
from syncagent.settings import WebSettings

OPEN_PATHS = frozenset({"/healthz"})
LOCAL_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_auth_for_bind(host: str, web: WebSettings) -> None:
    """Refuse a bind beyond this machine when no token or basic auth is configured."""
    if not is_loopback(host) and not web.has_auth:
        raise ConfigError(
            f"serving on {host} would let anyone who can reach it read the reports, and no "
            "token or basic auth is configured",
            hint="Set web.token (SYNCAGENT_WEB__TOKEN) or web.username and web.password "
                 "(SYNCAGENT_WEB__USERNAME, SYNCAGENT_WEB__PASSWORD) in the settings, or "
                 "bind to 127.0.0.1.")


def authorised(header: str | None, web: WebSettings) -> bool:
    """Whether an Authorization header carries the configured token or user and password
    (compared in constant time)."""
    if not web.has_auth:
        return True
    scheme, _, value = (header or "").partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and web.token is not None:
        return secrets.compare_digest(value.encode(), web.token.get_secret_value().encode())
    if scheme == "basic" and web.password is not None and web.username is not None:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        same_user = secrets.compare_digest(user.encode(), web.username.encode())
        same_password = secrets.compare_digest(password.encode(),
                                               web.password.get_secret_value().encode())
        return same_user and same_password
    return False


class AuthMiddleware:
    """Answers 401 to any request without valid credentials (unknown paths included, so an
    outsider cannot tell which pages exist), except the open paths."""

    def __init__(self, app: ASGIApp, web: WebSettings) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or not self.web.has_auth:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization", b"").decode("latin-1") or None
        if authorised(header, self.web):
            await self.app(scope, receive, send)
            return
        challenge = b'Basic realm="syncagent", charset="UTF-8"' if self.web.password \
            else b'Bearer realm="syncagent"'
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"www-authenticate", challenge)]})
        await send({"type": "http.response.body",
                    "body": b"401: this dashboard needs the token or the user and password "
                            b"set in the settings (web.token, web.username/web.password)\n"})
