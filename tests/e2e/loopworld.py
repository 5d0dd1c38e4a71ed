"""Helpers for the handoff-loop acceptance tests (issue #14).

A world whose routing pool holds real sandbox reps, new MQLs made the way marketing makes
them (HubSpot contacts that fill in forms, handed to sales as new Salesforce Leads), the
sandbox clock moved to a moment of the business week, and the Tasks the org holds, read
through simple-salesforce as an admin would read them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from state.models import Base
from syncagent.pipeline.agent import build_agent, settings_from_info
from syncagent.pipeline.cycle import Agent
from syncagent.settings import load_settings
from tests.e2e.conftest import MAPPINGS, World, WorldFactory

# mappings/routing.yaml's business hours: 09:00-17:00 in New York, Monday to Friday.
NEW_YORK = ZoneInfo("America/New_York")
FRIDAY = 4
# The shipped na-smb pool names three example users; the test puts sandbox reps in their place.
RowT = TypeVar("RowT", bound=Base)
SHIPPED_POOL = ("cara.smb@example.com", "dan.smb@example.com", "eve.smb@example.com")


@dataclass(frozen=True)
class Rep:
    id: str
    email: str
    manager_id: str


@dataclass(frozen=True)
class PoolWorld:
    world: World
    pool: tuple[Rep, ...]
    mappings: Path

    @property
    def agent(self) -> Agent:
        return self.world.agent


def pool_world(world_factory: WorldFactory, tmp_path: Path, leads: int = 100,
               seed: int = 7) -> PoolWorld:
    """A backfilled world whose na-smb pool is three active, present reps with a manager."""
    world = world_factory(leads=leads, seed=seed)
    users = world.salesforce().query_all(
        "SELECT Id, Email, IsActive, Out_Of_Office__c, ManagerId FROM User")["records"]
    reps = [Rep(u["Id"], u["Email"], u["ManagerId"]) for u in users
            if u["IsActive"] and not u["Out_Of_Office__c"] and u["ManagerId"]]
    assert len(reps) >= 3, f"the seed should hold three present reps with a manager: {users}"
    pool = tuple(sorted(reps, key=lambda r: r.id)[:3])
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    routing = mappings / "routing.yaml"
    text_ = routing.read_text(encoding="utf-8")
    for shipped, rep in zip(SHIPPED_POOL, pool, strict=True):
        assert shipped in text_, f"mappings/routing.yaml no longer names {shipped}"
        text_ = text_.replace(shipped, rep.email)
    routing.write_text(text_, encoding="utf-8")
    world = World(world.sandbox, agent_with(world, mappings), world.state_url)
    return PoolWorld(world, pool, mappings)


def agent_with(world: World, mappings: Path) -> Agent:
    """An agent on the world's sandbox and state DB that reads ``mappings``."""
    settings = load_settings(None, state_url=world.state_url, mappings_dir=mappings,
                             **settings_from_info(world.sandbox.info))
    agent = build_agent(settings)
    agent.clock = world.sandbox.ctx.clock.now
    return agent


def next_friday_afternoon(now: datetime, mappings: Path, days_clear: int = 12,
                          at: time = time(15, 0)) -> datetime:
    """The next Friday at ``at`` New York time, at least an hour after ``now``, with none of
    routing.yaml's holidays in the ``days_clear`` days from it (a test may run any week)."""
    routing = yaml.safe_load((mappings / "routing.yaml").read_text(encoding="utf-8"))
    holidays = {date.fromisoformat(str(d))
                for d in (routing.get("business_hours") or {}).get("holidays") or ()}
    local = now.astimezone(NEW_YORK)
    day = local.date() + timedelta(days=(FRIDAY - local.weekday()) % 7)
    while new_york(day, at) <= now + timedelta(hours=1) \
            or any(day + timedelta(days=n) in holidays for n in range(days_clear)):
        day += timedelta(days=7)
    return new_york(day, at)


def new_york(day: date, at: time) -> datetime:
    return datetime.combine(day, at, NEW_YORK)


def advance_to(world: World, moment: datetime) -> None:
    """Move the sandbox clock (and with it the agent's) forward to ``moment``."""
    clock = world.sandbox.ctx.clock
    ahead = (moment - clock.now()).total_seconds()
    assert ahead > 0, f"{moment} has passed already ({clock.now()}): the test ran too slowly"
    clock.advance(ahead)


def new_hubspot_mqls(world: World, count: int, tag: str) -> list[str]:
    """``count`` new HubSpot contacts, each a well-fitting buyer who filled in two forms in the
    last hour (grade A, score over 100: an MQL at the next cycle). Returns their e-mails."""
    ctx = world.sandbox.ctx
    emails = []
    with ctx.lock:
        now = ctx.clock.now()
        for n in range(count):
            email = f"{tag}{n}@{tag}-buyer{n}.example.com"
            record = ctx.hs.create("contacts", {
                "email": email, "firstname": "Morgan", "lastname": f"{tag.title()} {n}",
                "jobtitle": "VP Marketing", "company": f"{tag.title()} Buyer {n}",
                "numberofemployees": "250", "industry": "COMPUTER_SOFTWARE", "country": "US",
                "website": f"https://www.{tag}-buyer{n}.example.com",
                "lifecyclestage": "lead"}, created_at=now - timedelta(hours=2), system=True)
            for minutes in (50, 20):
                ctx.hs.add_event("e_submitted_form", record.id, now - timedelta(minutes=minutes),
                                 {"hs_form_title": "Contact sales",
                                  "hs_url": "https://www.example-vendor.com/contact"})
            emails.append(email)
    return emails


def set_lead_status(world: World, lead_ids: Iterable[str], status: str) -> None:
    """Each lead's owner sets its status now, through the sandbox's simulation (a rep's
    edit in Salesforce); nothing else happens and the clock stays where it is."""
    changes = [{"lead_id": lead_id, "status": status} for lead_id in lead_ids]
    done = world.sandbox.simulate(minutes=0, events=0, rep_actions=0, calls=0,
                                  lead_statuses=changes)["lead_statuses"]
    assert [d["lead_id"] for d in done] == [c["lead_id"] for c in changes], done


def leads_by_email(world: World, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
    wanted = {e.lower() for e in emails}
    rows = world.salesforce().query_all(
        "SELECT Id, Email, OwnerId, Status, Lifecycle_Stage__c, Score_Reasons__c, "
        "Syncagent_Id__c FROM Lead")["records"]
    found = {str(r["Email"]).lower(): r for r in rows if str(r["Email"]).lower() in wanted}
    return found


def agent_tasks(world: World) -> list[dict[str, Any]]:
    """Every Task in the org that carries an idempotency key (the agent's tasks)."""
    rows = world.salesforce().query_all(
        "SELECT Id, OwnerId, WhoId, Subject, Description, Priority, Status, ActivityDate, "
        "Idempotency_Key__c FROM Task")["records"]
    return [r for r in rows if r.get("Idempotency_Key__c")]


def sla_kind(task: dict[str, Any]) -> str | None:
    """The timer step of an SLA task, from its key ``sla:{person}:{kind}:{started}``."""
    parts = str(task["Idempotency_Key__c"]).split(":")
    return parts[2] if len(parts) == 4 and parts[0] == "sla" else None


def sla_tasks(world: World, kind: str, who: Iterable[str]) -> list[dict[str, Any]]:
    """The SLA tasks of one step (remind, escalate, ...) about these person records."""
    ids = set(who)
    return [t for t in agent_tasks(world) if sla_kind(t) == kind and t["WhoId"] in ids]


def state_rows(state_url: str, model: type[RowT]) -> list[RowT]:
    """Every row of one handoff table (models of migration 0004), detached from the DB."""
    engine = create_engine(state_url)
    try:
        with Session(engine) as session:
            rows = list(session.scalars(select(model)))
            session.expunge_all()
            return rows
    finally:
        engine.dispose()
