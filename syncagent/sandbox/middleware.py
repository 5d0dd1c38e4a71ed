"""ASGI middleware: request-level faults, HubSpot auth and rate limits, and call statistics.

Which system a request belongs to is decided by its path: ``/services`` and ``/id`` are
Salesforce (REST, SOAP login, OAuth), ``/__sandbox`` is control (never faulted or counted),
everything else is HubSpot. Error bodies follow each vendor's shape: Salesforce a JSON list of
``{message, errorCode}``, HubSpot ``{status: "error", message, category, correlationId}``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

from syncagent.sandbox.common import RequestFault, System
from syncagent.sandbox.context import Context
from syncagent.sandbox.hubspot.ratelimit import check_auth, is_search, rate_limit_body
from syncagent.sandbox.hubspot.scopes import check_scopes

log = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_LITERAL_PARAMS = frozenset({"object_type", "action", "sobject", "sObject", "object_name",
                             "from_object_type", "to_object_type"})
RESET_STATUS = 0   # stats status for a connection reset (no HTTP status was sent)


def system_for(path: str) -> System | None:
    """The emulated system a path belongs to; None for the control endpoints."""
    if path.startswith("/__sandbox"):
        return None
    if path.startswith(("/services", "/id/")) or path == "/id":
        return "salesforce"
    return "hubspot"


def salesforce_error(status: int, message: str, code: str) -> tuple[int, list[tuple[bytes, bytes]],
                                                                     bytes]:
    body = json.dumps([{"message": message, "errorCode": code}]).encode()
    return status, [(b"content-type", b"application/json;charset=UTF-8")], body


def hubspot_error(status: int, message: str, category: str, **extra: Any,
                  ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    payload = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
               "category": category, **extra}
    return status, [(b"content-type", b"application/json;charset=utf-8")], json.dumps(
        payload).encode()


def injected_error(system: System, fault: RequestFault,
                   ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The response of an injected 500/503/429, shaped like the system's own."""
    if system == "salesforce":
        if fault == "500":
            return salesforce_error(500, "An unexpected error occurred. Please include this "
                                    "ErrorId if you contact support: 1894622231-52431 "
                                    "(-1206477153)", "UNKNOWN_EXCEPTION")
        if fault == "503":
            status, headers, body = salesforce_error(503, "Server Unavailable",
                                                     "SERVER_UNAVAILABLE")
            return status, [*headers, (b"retry-after", b"1")], body
        # Salesforce reuses REQUEST_LIMIT_EXCEEDED for concurrency limits; only the message
        # tells them apart from the daily quota (which the Salesforce router answers with 403).
        status, headers, body = salesforce_error(429, "ConcurrentPerOrgLongTxn Limit exceeded.",
                                                 "REQUEST_LIMIT_EXCEEDED")
        return status, [*headers, (b"retry-after", b"1")], body
    if fault == "500":
        return hubspot_error(500, "internal error", "INTERNAL_ERROR")
    if fault == "503":
        status, headers, body = hubspot_error(503, "Service Unavailable", "SERVICE_UNAVAILABLE")
        return status, [*headers, (b"retry-after", b"1")], body
    return 429, [(b"content-type", b"application/json;charset=utf-8")], rate_limit_body(
        "TEN_SECONDLY_ROLLING")


class FaultAndStatsMiddleware:
    """Applies the fault profile and HubSpot limits to every API request and counts it."""

    def __init__(self, app: ASGIApp, ctx: Context) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        system = system_for(scope["path"])
        if system is None:
            await self.app(scope, receive, send)
            return
        ctx = self.ctx
        status_seen: list[int] = []

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(int(message["status"]))
            await send(message)

        latency = ctx.faults.latency_seconds(system)
        if latency > 0:
            await asyncio.sleep(latency)
        fault = ctx.faults.request_fault(system)
        if fault is not None:
            self._count_fault(system, fault)
        if fault == "reset":
            self._abort(receive)
            self._count(scope, system, RESET_STATUS)
            await _until_disconnected(receive)
            return
        if fault in ("500", "503", "429"):
            assert fault is not None
            await _respond(counting_send, *injected_error(system, fault))
        elif system == "hubspot" and (refusal := self._hubspot_gate(scope)) is not None:
            await _respond(counting_send, *refusal)
        elif fault == "hang":
            await self._hang(scope, receive, counting_send, system)
        else:
            await self.app(scope, receive, self._with_rate_headers(scope, system, counting_send))
        self._count(scope, system, status_seen[0] if status_seen else RESET_STATUS)

    def _hubspot_gate(self, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """HubSpot auth and rate limits: a refusal response, or None to let the call through."""
        ctx = self.ctx
        auth = check_auth(scope, ctx.hubspot_access_token)
        if auth is not None:
            return auth
        refusal = check_scopes(scope["method"], scope["path"], ctx.hs.scopes)
        if refusal is not None:
            return refusal
        return ctx.hs.rate_limiter.admit(is_search(scope), ctx.clock.now(), ctx.faults.profile)

    def _with_rate_headers(self, scope: Scope, system: System, send: Send) -> Send:
        """HubSpot answers carry X-HubSpot-RateLimit-* (search answers do not)."""
        if system != "hubspot":
            return send
        if is_search(scope):
            return send
        ctx = self.ctx

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = ctx.hs.rate_limiter.headers(ctx.clock.now(), ctx.faults.profile)
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        return send_with_headers

    async def _hang(self, scope: Scope, receive: Receive, send: Send, system: System) -> None:
        """Do the work, then withhold the answer past any sane client timeout.

        Applying the request before hanging is the harsh case on purpose: the client cannot
        tell whether its write happened, which is what idempotency keys are for.
        """
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, self._with_rate_headers(scope, system, hold))
        try:
            await asyncio.sleep(self.ctx.faults.faults_for(system).hang_seconds)
        except asyncio.CancelledError:
            return   # the server is shutting down; nobody is waiting for this answer
        for message in held:
            await send(message)

    @staticmethod
    def _abort(receive: Receive) -> None:
        """Drop the TCP connection without an answer (the client sees a reset)."""
        cycle = getattr(receive, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is not None:
            transport.abort()
            return
        raise ConnectionResetError("sandbox injected a connection reset")

    def _count(self, scope: Scope, system: System, status: int) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        # Name the object and batch action: "/crm/v3/objects/contacts/batch/update" says more
        # than "{object_type}/batch/{action}" and still has few distinct values.
        for key, value in (scope.get("path_params") or {}).items():
            if key in _LITERAL_PARAMS:
                template = template.replace("{" + key + "}", str(value))
        with self.ctx.lock:
            self.ctx.stats.calls[(system, scope["method"], template, status)] += 1

    def _count_fault(self, system: System, fault: str) -> None:
        with self.ctx.lock:
            self.ctx.stats.faults[(system, fault)] += 1


async def _until_disconnected(receive: Receive) -> None:
    """Wait (briefly) for the server to notice the aborted connection, so it does not log
    the missing response as an application error."""
    try:
        async with asyncio.timeout(1):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                   body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
