"""Shared pieces of the sandbox: simulated clock, fault profile and injector, the context.

Both emulators (``syncagent.sandbox.salesforce`` and ``syncagent.sandbox.hubspot``) receive
one :class:`SandboxContext`. This module is the bottom layer of the sandbox: it imports
neither emulator (both import it), so the context is generic in the two systems' state and
each emulator names the half it uses (``SalesforceContext``, ``HubSpotContext``);
``syncagent.sandbox.context`` names the whole for the modules that drive both.
``SalesforceCredentials`` is defined HERE (not in the salesforce package) so the server can
build it before the Salesforce org exists.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

System = Literal["salesforce", "hubspot"]
SYSTEMS: tuple[System, ...] = ("salesforce", "hubspot")
RequestFault = Literal["500", "503", "429", "hang", "reset"]
OrgProfile = Literal["configured", "fresh"]
HubSpotTier = Literal["starter", "professional", "enterprise"]
ORG_PROFILES: tuple[OrgProfile, ...] = ("configured", "fresh")
HUBSPOT_TIERS: tuple[HubSpotTier, ...] = ("starter", "professional", "enterprise")

# Every private-app scope the sandbox knows of: a token made without --hubspot-scopes holds all
# of them. Names as HubSpot's scope reference spells them (API-FACTS.md, "Scopes").
HUBSPOT_SCOPES: tuple[str, ...] = (
    "crm.objects.contacts.read", "crm.objects.contacts.write",
    "crm.objects.owners.read",
    "crm.lists.read", "crm.lists.write",
    "crm.schemas.contacts.read", "crm.schemas.contacts.write",
)


class SandboxClock:
    """Simulated time: real time flowing from a start instant, plus whatever was advanced.

    Time keeps flowing with the wall clock (so SystemModstamp moves between two real calls and
    rate-limit windows expire), and ``advance`` jumps it forward for simulations.
    """

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("SandboxClock start must be timezone-aware")
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._mono0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The simulated current time, aware UTC."""
        with self._lock:
            offset = self._offset
        return self._start + timedelta(seconds=time.monotonic() - self._mono0 + offset)

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward (negative values are refused: time never goes back)."""
        if seconds < 0:
            raise ValueError("the sandbox clock cannot go backwards")
        with self._lock:
            self._offset += seconds


class SystemFaults(BaseModel):
    """Request-level and record-level faults of one system; all rates are 0..1."""

    latency_ms: float = Field(0, ge=0)
    jitter_ms: float = Field(0, ge=0)
    rate_500: float = Field(0, ge=0, le=1)
    rate_503: float = Field(0, ge=0, le=1)
    rate_429: float = Field(0, ge=0, le=1)
    rate_hang: float = Field(0, ge=0, le=1)
    rate_reset: float = Field(0, ge=0, le=1)
    rate_reject: float = Field(0, ge=0, le=1)
    hang_seconds: float = Field(35, ge=0)


class FaultProfile(BaseModel):
    """Everything `POST /__sandbox/faults` accepts; random draws are deterministic under seed."""

    seed: int = 0
    salesforce: SystemFaults = SystemFaults()
    hubspot: SystemFaults = SystemFaults()
    session_expiry_after_calls: int | None = Field(None, ge=1)
    salesforce_daily_quota: int = Field(100_000, ge=0)
    hubspot_requests_per_10s: int = Field(100, ge=1)
    hubspot_searches_per_second: int = Field(5, ge=1)
    hubspot_daily_limit: int = Field(250_000, ge=0)
    # HubSpot search sees a new or changed record only this many seconds after the change, as
    # the real index lags (API-FACTS.md: "New or changed records appear in search after a
    # short delay"). On by default; tests that need instant search set 0.
    hubspot_search_delay_seconds: float = Field(2, ge=0)


class FaultInjector:
    """Deterministic fault draws: one random stream per (system, purpose) under profile.seed.

    Separate streams keep record rejections independent of how many requests were made, so a
    test that sends the same batches sees the same rejected records.
    """

    def __init__(self, profile: FaultProfile | None = None) -> None:
        self.profile = profile or FaultProfile()
        self._lock = threading.Lock()
        self._rngs: dict[str, random.Random] = {}

    def _rng(self, system: System, purpose: str) -> random.Random:
        key = f"{system}:{purpose}"
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = random.Random(f"{self.profile.seed}:{key}")
        return rng

    def reset(self, profile: FaultProfile) -> None:
        """Switch to a new profile in place (routers keep their reference); draws restart."""
        with self._lock:
            self.profile = profile
            self._rngs.clear()

    def faults_for(self, system: System) -> SystemFaults:
        return self.profile.salesforce if system == "salesforce" else self.profile.hubspot

    def reject_record(self, system: System) -> bool:
        """Whether this record write should fail validation (rate_reject of the system)."""
        rate = self.faults_for(system).rate_reject
        if rate <= 0:
            return False
        with self._lock:
            return self._rng(system, "reject").random() < rate

    def latency_seconds(self, system: System) -> float:
        """Injected latency for one request: fixed plus uniform jitter."""
        f = self.faults_for(system)
        if f.latency_ms <= 0 and f.jitter_ms <= 0:
            return 0.0
        with self._lock:
            jitter = self._rng(system, "latency").uniform(0, f.jitter_ms) if f.jitter_ms else 0.0
        return (f.latency_ms + jitter) / 1000.0

    def request_fault(self, system: System) -> RequestFault | None:
        """One draw per request: which request-level fault (if any) to inject."""
        f = self.faults_for(system)
        rates: list[tuple[RequestFault, float]] = [
            ("500", f.rate_500), ("503", f.rate_503), ("429", f.rate_429),
            ("hang", f.rate_hang), ("reset", f.rate_reset)]
        if all(rate <= 0 for _, rate in rates):
            return None
        with self._lock:
            draw = self._rng(system, "request").random()
        edge = 0.0
        for kind, rate in rates:
            edge += rate
            if draw < edge:
                return kind
        return None


@dataclass(frozen=True)
class SandboxConfig:
    """What kind of org and portal the sandbox stands for (``syncagent sandbox --profile``).

    ``configured`` is an org where the agent's set-up has run: its custom fields, picklist
    values, permissions, properties and lists exist. ``fresh`` is a new org and portal where
    none of that exists yet and the legacy logins are off. Both are equally strict.
    """

    profile: OrgProfile = "configured"
    hubspot_scopes: tuple[str, ...] = HUBSPOT_SCOPES
    hubspot_tier: HubSpotTier = "enterprise"

    def __post_init__(self) -> None:
        if self.profile not in ORG_PROFILES:
            raise ValueError(f"unknown sandbox profile {self.profile!r}: use one of "
                             f"{', '.join(ORG_PROFILES)}")
        if self.hubspot_tier not in HUBSPOT_TIERS:
            raise ValueError(f"unknown HubSpot tier {self.hubspot_tier!r}: use one of "
                             f"{', '.join(HUBSPOT_TIERS)}")

    @property
    def fresh(self) -> bool:
        return self.profile == "fresh"

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "hubspot_scopes": list(self.hubspot_scopes),
                "hubspot_tier": self.hubspot_tier}


@dataclass
class SalesforceCredentials:
    """What the Salesforce emulator accepts; the sandbox makes these at start-up."""

    username: str
    password: str
    security_token: str
    consumer_key: str
    consumer_secret: str
    session_id: str
    jwt_private_key_pem: str          # PEM (PKCS#8) of the RSA key a client signs JWTs with
    jwt_public_key_pem: str           # PEM of its public key: the emulator verifies with this
    jwt_certificate_pem: str          # self-signed X.509 cert of the same key (as a connected app)
    jwt_private_key_path: str = ""    # where the private key PEM was written (for info)


@dataclass
class SandboxStats:
    """Counters behind GET /__sandbox/stats."""

    calls: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)
    faults: Counter[tuple[str, str]] = field(default_factory=Counter)
    # tasks (alerts, SLA steps) made through the API, and the calls that carried them, by
    # system: what a benchmark compares with the fewest calls the batch limits allow
    tasks_created: Counter[str] = field(default_factory=Counter)
    task_calls: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        by_system: Counter[str] = Counter()
        for (system, _m, _p, _s), n in self.calls.items():
            by_system[system] += n
        return {
            "calls_by_system": dict(by_system),
            "calls": [{"system": s, "method": m, "path": p, "status": st, "count": n}
                      for (s, m, p, st), n in sorted(self.calls.items())],
            "records_written": dict(sorted(self.written.items())),
            "faults_injected": [{"system": s, "fault": k, "count": n}
                                for (s, k), n in sorted(self.faults.items())],
            "tasks_created": {system: self.tasks_created[system] for system in SYSTEMS},
            "task_calls": {system: self.task_calls[system] for system in SYSTEMS},
        }


OrgT = TypeVar("OrgT")
PortalT = TypeVar("PortalT")


@dataclass
class SandboxContext(Generic[OrgT, PortalT]):
    """One per running sandbox, passed to both routers.

    Routers hold ``lock`` while they read or mutate ``sf`` / ``hs`` state. ``sf`` is the
    Salesforce org and ``hs`` the HubSpot portal (typed where they are used, see above); reset
    swaps both in place, so handlers read them at each call.
    """

    clock: SandboxClock
    faults: FaultInjector
    base_url: str
    sf: OrgT
    hs: PortalT
    lock: threading.RLock = field(default_factory=threading.RLock)
    stats: SandboxStats = field(default_factory=SandboxStats)
    credentials: SalesforceCredentials | None = None
    hubspot_access_token: str = ""
    ca_cert: str = ""
    simulations: int = 0              # how many /simulate calls since start or reset
    config: SandboxConfig = field(default_factory=SandboxConfig)

    def count_written(self, object_name: str, n: int) -> None:
        """Record n records written to object_name (shown by /__sandbox/stats)."""
        if n:
            with self.lock:
                self.stats.written[object_name] += n

    def count_tasks(self, system: System, created: int) -> None:
        """One API call that wrote tasks, ``created`` of them new (shown by /__sandbox/stats)."""
        with self.lock:
            self.stats.task_calls[system] += 1
            self.stats.tasks_created[system] += created

    def set_profile(self, profile: FaultProfile) -> None:
        """Replace the fault profile; draws restart from the profile's seed."""
        self.faults.reset(profile)
