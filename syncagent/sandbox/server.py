"""The sandbox server: one FastAPI app, both emulators, served over HTTPS by uvicorn.

``start_sandbox`` builds a throwaway CA and server certificate (trustme), the Salesforce
credentials (with a JWT keypair), seeds both systems, and runs uvicorn in a background thread.
Control endpoints live under ``/__sandbox``; request-level faults and stats are applied by
``syncagent.sandbox.middleware``.
"""

from __future__ import annotations

import gc
import json
import secrets
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
import trustme
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import APIRouter, Body, FastAPI, HTTPException

from syncagent.sandbox.common import (
    FaultInjector,
    FaultProfile,
    SalesforceCredentials,
    SandboxClock,
    SandboxConfig,
    SandboxContext,
    SandboxStats,
)
from syncagent.sandbox.context import Context
from syncagent.sandbox.hubspot import HubSpotPortal
from syncagent.sandbox.hubspot import make_router as make_hubspot_router
from syncagent.sandbox.middleware import FaultAndStatsMiddleware
from syncagent.sandbox.salesforce import SalesforceOrg
from syncagent.sandbox.salesforce import make_router as make_salesforce_router

log = structlog.get_logger(__name__)

READY_TIMEOUT_S = 30.0


def make_credentials(workdir: Path) -> SalesforceCredentials:
    """Fresh Salesforce credentials and a JWT keypair; the private key PEM goes to workdir."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syncagent sandbox connected app")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .sign(key, hashes.SHA256()))
    key_path = workdir / "jwt_private_key.pem"
    key_path.write_text(private_pem)
    key_path.chmod(0o600)
    org_id = "00D5g00000SndBX"  # 15 characters, as a real org id
    return SalesforceCredentials(
        username="agent@syncagent-sandbox.example.com",
        password="sandbox-" + secrets.token_hex(6),
        security_token=secrets.token_urlsafe(18)[:24],
        consumer_key="3MVG9sandbox" + secrets.token_hex(20),
        consumer_secret=secrets.token_hex(32).upper(),
        session_id=f"{org_id}!AQ" + secrets.token_urlsafe(60)[:80],
        jwt_private_key_pem=private_pem,
        jwt_public_key_pem=public_pem,
        jwt_certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        jwt_private_key_path=str(key_path),
    )


@dataclass
class SandboxState:
    """What reset needs to rebuild the sandbox exactly as it started."""

    leads: int
    seed: int
    profile: FaultProfile
    credentials: SalesforceCredentials
    config: SandboxConfig = field(default_factory=SandboxConfig)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def build_systems(ctx: Context, state: SandboxState) -> None:
    """(Re)create both systems on a fresh clock and seed them; swaps ctx.sf/ctx.hs in place."""
    from syncagent.sandbox.seed import seed_sandbox

    clock = SandboxClock()
    with ctx.lock:
        ctx.clock = clock
        ctx.config = state.config
        ctx.sf = SalesforceOrg(clock, state.credentials, state.config)
        ctx.hs = HubSpotPortal.from_config(clock, state.config)
        ctx.stats = SandboxStats()
        ctx.simulations = 0
        ctx.faults.reset(state.profile.model_copy(deep=True))
        seed_sandbox(ctx, leads=state.leads, seed=state.seed)
        ctx.stats = SandboxStats()   # seeding is not API traffic
    # Seeded objects live as long as the sandbox: keep them out of later collections, which
    # otherwise stall the first heavy request after a large seed (~0.8 s at 100,000 leads).
    gc.collect()
    gc.freeze()


def info_payload(ctx: Context) -> dict[str, Any]:
    """The /__sandbox/info JSON (keys fixed by the team contract, plus the profile)."""
    creds = ctx.credentials
    assert creds is not None
    return {
        "profile": ctx.config.profile,
        "config": ctx.config.as_dict(),
        "salesforce": {
            "instance_url": ctx.base_url,
            "username": creds.username,
            "password": creds.password,
            "security_token": creds.security_token,
            "consumer_key": creds.consumer_key,
            "consumer_secret": creds.consumer_secret,
            "session_id": creds.session_id,
            "jwt_private_key": creds.jwt_private_key_path,
        },
        # the portal's limits, as an operator would set them for a real portal's tier
        "hubspot": {"base_url": ctx.base_url, "access_token": ctx.hubspot_access_token,
                    "requests_per_10s": ctx.faults.profile.hubspot_requests_per_10s,
                    "searches_per_second": ctx.faults.profile.hubspot_searches_per_second},
        "ca_cert": ctx.ca_cert,
    }


def _field_name(body: dict[str, Any]) -> tuple[str, str]:
    obj_name, _, field_name = str(body.get("field", "")).partition(".")
    if not obj_name or not field_name:
        raise HTTPException(400, 'give {"field": "Object.Field__c"}')
    return obj_name, field_name


def control_router(ctx: Context, state: SandboxState) -> APIRouter:
    """GET info/stats, POST reset/faults/simulate under /__sandbox."""
    router = APIRouter(prefix="/__sandbox")

    @router.get("/info")
    def info() -> dict[str, Any]:
        return info_payload(ctx)

    @router.get("/stats")
    def stats() -> dict[str, Any]:
        with ctx.lock:
            body = ctx.stats.as_dict()
            body["daily_usage"] = {
                "salesforce": {"used": int(getattr(ctx.sf, "api_calls_today", 0)),
                               "max": ctx.faults.profile.salesforce_daily_quota},
                "hubspot": ctx.hs.rate_limiter.daily_usage(ctx.faults.profile),
            }
            body["now"] = ctx.clock.now().isoformat()
        return body

    @router.get("/clock")
    def clock() -> dict[str, Any]:
        """The simulated now: an agent run against the sandbox takes its time from here."""
        return {"now": ctx.clock.now().isoformat()}

    @router.post("/reset")
    def reset() -> dict[str, Any]:
        build_systems(ctx, state)
        return {"reset": True, "leads": state.leads, "seed": state.seed}

    @router.post("/faults")
    def set_faults(profile: FaultProfile) -> dict[str, Any]:
        with ctx.lock:
            ctx.set_profile(profile)
        return profile.model_dump()

    @router.get("/faults")
    def get_faults() -> dict[str, Any]:
        return ctx.faults.profile.model_dump()

    @router.post("/salesforce/remove-field")
    def remove_field(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """Delete a field from the org, e.g. {"field": "User.Territory__c"} (for tests of an
        org without it)."""
        obj_name, field_name = _field_name(body)
        with ctx.lock:
            if not ctx.sf.remove_field(obj_name, field_name):
                raise HTTPException(404, f"no field {obj_name}.{field_name} in the org")
        return {"removed": f"{obj_name}.{field_name}"}

    @router.post("/salesforce/revoke-read")
    def revoke_read(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """Take the integration user's read (and edit) access to a custom field away, e.g.
        {"field": "Lead.Segment__c"}."""
        obj_name, field_name = _field_name(body)
        with ctx.lock:
            obj = ctx.sf.schema.full(obj_name)
            f = obj.field(field_name) if obj is not None else None
            if obj is None or f is None or not f.custom:
                raise HTTPException(404, f"no custom field {obj_name}.{field_name} in the org")
            ctx.sf.schema.revoke(obj.name, f.name)
        return {"revoked": f"{obj.name}.{f.name}"}

    @router.post("/simulate")
    def simulate(params: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        from syncagent.sandbox.simulate import SimulateParams, run_simulation

        try:
            return run_simulation(ctx, SimulateParams.model_validate(params))
        except ValueError as error:   # nothing was changed: the request names what is wrong
            raise HTTPException(400, f"bad simulate parameters: {error}") from None

    return router


def create_app(ctx: Context, state: SandboxState) -> FastAPI:
    """The ASGI app: control endpoints, Salesforce and HubSpot."""
    app = FastAPI(title="syncagent sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(control_router(ctx, state))
    app.include_router(make_salesforce_router(ctx))
    app.include_router(make_hubspot_router(ctx))
    app.add_middleware(FaultAndStatsMiddleware, ctx=ctx)
    return app


class RunningSandbox:
    """A sandbox served in a background thread of this process."""

    def __init__(self, ctx: Context, state: SandboxState, server: uvicorn.Server,
                 thread: threading.Thread, workdir: Path) -> None:
        self.ctx = ctx
        self.url = ctx.base_url
        self.ca_cert = ctx.ca_cert
        self.info: dict[str, Any] = info_payload(ctx)
        self._state = state
        self._server = server
        self._thread = thread
        self._workdir = workdir

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        import requests

        response = requests.request(method, f"{self.url}/__sandbox/{path}", json=body,
                                    verify=self.ca_cert, timeout=120)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Rebuild both systems from the start seed, clear stats, restore the start profile."""
        self._control("POST", "reset")

    def set_faults(self, profile: dict[str, Any]) -> None:
        """POST /__sandbox/faults with a FaultProfile as a dict."""
        self._control("POST", "faults", profile)

    def stats(self) -> dict[str, Any]:
        return dict(self._control("GET", "stats"))

    def remove_field(self, field: str) -> None:
        """Delete a Salesforce field from the org ("User.Territory__c"); reset restores it."""
        self._control("POST", "salesforce/remove-field", {"field": field})

    def revoke_read(self, field: str) -> None:
        """Revoke the integration user's access to a custom field ("Lead.Segment__c")."""
        self._control("POST", "salesforce/revoke-read", {"field": field})

    def simulate(self, **params: Any) -> dict[str, Any]:
        return dict(self._control("POST", "simulate", params))

    def stop(self) -> None:
        """Stop serving and delete the temp dir (CA, keys)."""
        self._server.should_exit = True
        self._server.force_exit = True   # do not wait for idle keep-alive connections
        self._thread.join(timeout=10)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.set_inheritable(True)
    return sock


def start_sandbox(port: int = 0, leads: int = 2000, seed: int = 7,
                  faults: FaultProfile | None = None,
                  config: SandboxConfig | None = None) -> RunningSandbox:
    """Seed and serve a sandbox on 127.0.0.1:port (0 = any free port); return when ready.

    ``config`` picks the org profile (configured, the default, or fresh) and the HubSpot
    token's scopes and tier.
    """
    workdir = Path(tempfile.mkdtemp(prefix="syncagent-sandbox-"))
    ca = trustme.CA(organization_name="syncagent sandbox CA")
    ca_path = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server_pem = workdir / "server.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(server_pem))

    sock = _bind(port)
    base_url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    state = SandboxState(leads=leads, seed=seed, profile=faults or FaultProfile(),
                         credentials=make_credentials(workdir),
                         config=config or SandboxConfig())
    clock = SandboxClock()
    ctx = SandboxContext(clock=clock, faults=FaultInjector(state.profile), base_url=base_url,
                         sf=SalesforceOrg(clock, state.credentials, state.config),
                         hs=HubSpotPortal.from_config(clock, state.config),
                         credentials=state.credentials,
                         hubspot_access_token="pat-na1-" + secrets.token_hex(16),
                         ca_cert=str(ca_path), config=state.config)
    build_systems(ctx, state)
    server_config = uvicorn.Config(create_app(ctx, state), log_level="warning", access_log=False,
                            ssl_certfile=str(server_pem), timeout_graceful_shutdown=1,
                            lifespan="off")
    server = uvicorn.Server(server_config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="syncagent-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"sandbox server did not start on {base_url}")
        time.sleep(0.01)
    log.info("sandbox.started", url=base_url, leads=leads, seed=seed,
             profile=state.config.profile)
    return RunningSandbox(ctx, state, server, thread, workdir)


def write_info(path: Path, running: RunningSandbox) -> None:
    """Write the info JSON to a file (used by the CLI for other processes)."""
    path.write_text(json.dumps(running.info, indent=2))
