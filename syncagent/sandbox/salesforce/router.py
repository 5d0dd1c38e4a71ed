"""FastAPI glue: one route per resource template, the auth/limits gate, and the login routes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from syncagent.sandbox.salesforce import auth
from syncagent.sandbox.salesforce.api import (
    ROUTES,
    Reply,
    Route,
    SalesforceApi,
    SfRequest,
    allowed_methods,
    versions_body,
)
from syncagent.sandbox.salesforce.mdapi import metadata_call
from syncagent.sandbox.salesforce.org import SalesforceContext

JSON_TYPE = "application/json;charset=UTF-8"
DATA_PREFIX = "/services/data/{version}"
ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"]
MAX_HEAD_BYTES = 16_384      # Salesforce: URI plus headers; longer requests get 414


def _dump(body: Any) -> bytes:
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A lone surrogate (a broken emoji, sandbox/poison.py) cannot be UTF-8: JSON escapes
        # it as \ud83d, as the real API sends such data.
        return json.dumps(body, separators=(",", ":")).encode()


def _response(reply: Reply, limit_info: str | None) -> Response:
    headers = dict(reply.headers)
    if limit_info is not None:
        headers["Sforce-Limit-Info"] = limit_info
    if reply.status == 204 or reply.body is None:
        return Response(status_code=reply.status, headers=headers)
    return Response(_dump(reply.body), status_code=reply.status, headers=headers,
                    media_type=JSON_TYPE)


def _request_head_size(request: Request) -> int:
    """Bytes of the request line's URI plus all header lines."""
    scope = request.scope
    uri = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 1
    return uri + sum(len(k) + len(v) + 4 for k, v in scope.get("headers", []))


async def _sf_request(request: Request) -> SfRequest:
    body = await request.body()
    return SfRequest(request.method, request.url.path, dict(request.path_params),
                     dict(request.query_params), {k.lower(): v for k, v in
                                                  request.headers.items()}, body)


def make_router(ctx: SalesforceContext) -> APIRouter:
    """Every Salesforce path the sandbox serves: REST data API, SOAP login, OAuth token."""
    api = SalesforceApi(ctx)
    router = APIRouter()

    def guarded(req: SfRequest, route: Route | None) -> Response:
        with ctx.lock:
            refusal = api.gate(req.headers)
            if refusal is not None:
                return _response(refusal, api.limit_header())
            if route is None:
                rest = req.path.split("/", 4)[4] if req.path.count("/") >= 4 else ""
                methods = allowed_methods("/" + rest)
                if methods:
                    reply = Reply(405, [{"errorCode": "METHOD_NOT_ALLOWED", "message":
                                         f"HTTP Method '{req.method}' not allowed. Allowed are "
                                         f"{','.join(methods)}"}])
                else:
                    reply = Reply(404, [{"errorCode": "NOT_FOUND",
                                         "message": "The requested resource does not exist"}])
            else:
                reply = api.run(route, req)
            return _response(reply, api.limit_header())

    def endpoint_for(route: Route | None) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if _request_head_size(request) > MAX_HEAD_BYTES:
                # Refused at Salesforce's edge, before auth: not an API call.
                return _response(Reply(414, [{
                    "errorCode": "URI_TOO_LONG", "message": "The request URI and headers "
                    "exceed 16,384 bytes: send long SOQL in a composite body or split it"}]),
                    None)
            req = await _sf_request(request)
            return await run_in_threadpool(guarded, req, route)
        return endpoint

    for route in ROUTES:
        path = DATA_PREFIX + route.template.rstrip("/")
        endpoint = endpoint_for(route)
        router.add_api_route(path, endpoint, methods=list(route.methods))
        router.add_api_route(path + "/", endpoint, methods=list(route.methods),
                             include_in_schema=False)
    router.add_api_route(DATA_PREFIX + "/{rest:path}", endpoint_for(None), methods=ALL_METHODS)

    async def versions(request: Request) -> Response:
        return Response(_dump(versions_body()), media_type=JSON_TYPE)

    router.add_api_route("/services/data", versions, methods=["GET"])
    router.add_api_route("/services/data/", versions, methods=["GET"])

    async def soap_login(request: Request) -> Response:
        body = await request.body()
        version = request.path_params["version"]

        def run() -> tuple[int, str]:
            with ctx.lock:
                return auth.soap_login(ctx, version, body)

        status, xml = await run_in_threadpool(run)
        return Response(xml, status_code=status, media_type="text/xml;charset=UTF-8")

    router.add_api_route("/services/Soap/u/{version}", soap_login, methods=["POST"])

    async def metadata_soap(request: Request) -> Response:
        body = await request.body()

        def run() -> tuple[int, str]:
            with ctx.lock:
                return metadata_call(ctx, body)

        status, xml = await run_in_threadpool(run)
        return Response(xml, status_code=status, media_type="text/xml;charset=UTF-8")

    # simple-salesforce posts to .../Soap/m/{version}/; login() names .../{version}/{org id}
    # and sf.deploy()/checkDeployStatus() post to .../deployRequest[/{id}]
    for path in ("/services/Soap/m/{version}", "/services/Soap/m/{version}/",
                 "/services/Soap/m/{version}/{org_id}",
                 "/services/Soap/m/{version}/deployRequest/{deploy_id}"):
        router.add_api_route(path, metadata_soap, methods=["POST"])

    async def oauth_token(request: Request) -> Response:
        body = await request.body()
        authorization = request.headers.get("authorization")

        def run() -> tuple[int, dict[str, Any]]:
            with ctx.lock:
                return auth.oauth_token(ctx, body, authorization)

        status, payload = await run_in_threadpool(run)
        return Response(_dump(payload), status_code=status, media_type=JSON_TYPE)

    router.add_api_route("/services/oauth2/token", oauth_token, methods=["POST"])

    async def identity(request: Request) -> Response:
        token = request.headers.get("authorization", "").partition(" ")[2].strip()

        def run() -> tuple[int, Any]:
            with ctx.lock:
                return auth.identity(ctx, token, request.path_params["org_id"],
                                     request.path_params["user_id"])

        status, payload = await run_in_threadpool(run)
        return Response(_dump(payload), status_code=status, media_type=JSON_TYPE)

    router.add_api_route("/id/{org_id}/{user_id}", identity, methods=["GET"])
    return router
