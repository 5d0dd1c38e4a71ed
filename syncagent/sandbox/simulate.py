"""POST /__sandbox/simulate: move the clock and make things happen, as in a working day.

New web behaviour lands in HubSpot (events, analytics properties move), reps work their
leads in Salesforce (status changes, disqualifications with a reason, a nurture track chosen,
an owner reassigned, calls logged), and new leads arrive. Everything done is returned with
record ids so tests can check that the agent noticed.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, model_validator

from syncagent.sandbox.context import Context
from syncagent.sandbox.hubspot.properties import iso_ms
from syncagent.sandbox.seed import GOOD_PAGES, LEAD_SOURCES, OTHER_PAGES, Seeder
from syncagent.sandbox.shipped import shipped

REP_ACTIONS = ("status", "disqualify", "nurture", "reassign")
STATUS_MOVES = {"Open - Not Contacted": "Working - Contacted",
                "Working - Contacted": "Accepted", "Accepted": "Qualified",
                "Recycled": "Working - Contacted"}
DISQUALIFY_REASONS = ("No Budget", "No Authority", "Timing", "Competitor", "Not a Fit",
                      "Bad Data")


MAX_SPAN_MINUTES = 60 * 24 * 30


class LeadStatusChange(BaseModel):
    """A rep sets a lead's status (and, for a disqualification or recycle, the reason)."""

    lead_id: str
    status: str
    reason: str | None = None


class SimulateParams(BaseModel):
    """What to simulate; every count may be 0. The clock moves by ``minutes`` plus ``hours``
    (60 minutes when neither is given)."""

    minutes: float | None = Field(None, ge=0, le=MAX_SPAN_MINUTES)
    hours: float | None = Field(None, ge=0, le=MAX_SPAN_MINUTES / 60)
    events: int = Field(200, ge=0, le=1_000_000)
    rep_actions: int = Field(10, ge=0, le=100_000)
    calls: int = Field(5, ge=0, le=100_000)
    new_leads: int = Field(0, ge=0, le=100_000)
    seed: int | None = None
    actions: list[str] | None = None   # restrict rep actions to these kinds
    # set at the end of the span, as the lead's owner: e.g. a rep accepts a lead
    lead_statuses: list[LeadStatusChange] = Field(default_factory=list, max_length=100_000)

    @model_validator(mode="after")
    def _span_fits(self) -> SimulateParams:
        if self.span_seconds() > MAX_SPAN_MINUTES * 60:
            raise ValueError(f"minutes + hours must not pass {MAX_SPAN_MINUTES} minutes "
                             "(30 days)")
        return self

    def span_seconds(self) -> float:
        if self.minutes is None and self.hours is None:
            return 3600.0
        return (self.minutes or 0.0) * 60 + (self.hours or 0.0) * 3600


class Simulation:
    def __init__(self, ctx: Context, params: SimulateParams, seed: int) -> None:
        self.ctx = ctx
        self.params = params
        self.rng = random.Random(seed)
        self.start = ctx.clock.now()
        ctx.clock.advance(params.span_seconds())
        self.end = ctx.clock.now()

    def moment(self) -> datetime:
        span = (self.end - self.start).total_seconds()
        return self.start + timedelta(seconds=self.rng.random() * span)

    def web_events(self) -> dict[str, Any]:
        hs, rng = self.ctx.hs, self.rng
        contacts = [r for r in hs.store("contacts").records.values() if not r.archived]
        if not contacts or not self.params.events:
            return {"count": 0, "contact_ids": []}
        # Busy people stay busy: weight by past page views.
        weights = [1 + int(r.properties.get("hs_analytics_num_page_views") or 0)
                   for r in contacts]
        touched: dict[int, int] = {}
        for record in rng.choices(contacts, weights=weights, k=self.params.events):
            when = self.moment()
            roll = rng.random()
            if roll < 0.7:
                url = "https://www.example-vendor.com" + rng.choice(
                    GOOD_PAGES if rng.random() < 0.5 else OTHER_PAGES)
                hs.add_event("e_visited_page", record.id, when, {"hs_url": url})
                self._bump(record.properties, "hs_analytics_num_page_views")
            elif roll < 0.8:
                form = rng.choice(("Demo request", "Ebook download", "Contact sales"))
                hs.add_event("e_submitted_form", record.id, when, {"hs_form_title": form})
                self._bump(record.properties, "num_conversion_events")
                record.properties["recent_conversion_event_name"] = form
            elif roll < 0.95:
                hs.add_event("e_opened_email", record.id, when,
                             {"hs_email_campaign": "Monthly Newsletter"})
                record.properties["hs_email_last_open_date"] = iso_ms(when)
            else:
                hs.add_event("e_clicked_email", record.id, when,
                             {"hs_email_campaign": "Monthly Newsletter",
                              "hs_url": "https://www.example-vendor.com/pricing"})
                record.properties["hs_email_last_click_date"] = iso_ms(when)
            touched[record.id] = touched.get(record.id, 0) + 1
        for rid in touched:   # analytics roll-ups are system updates: lastmodifieddate moves
            hs.update("contacts", rid, {}, system=True)
        return {"count": self.params.events, "contact_ids": sorted(touched)}

    @staticmethod
    def _bump(props: dict[str, str], name: str) -> None:
        props[name] = str(int(props.get(name) or 0) + 1)

    def open_leads(self) -> list[dict[str, Any]]:
        return [r for r in self.ctx.sf.records("Lead")
                if not r.get("IsDeleted") and not r.get("IsConverted")
                and r.get("Status") != "Unqualified"]

    def rep_actions(self) -> list[dict[str, Any]]:
        rng, sf = self.rng, self.ctx.sf
        leads = self.open_leads()
        users = [u["Id"] for u in sf.records("User") if u.get("IsActive")
                 and u.get("Territory__c")]
        kinds = [k for k in (self.params.actions or REP_ACTIONS) if k in REP_ACTIONS]
        done: list[dict[str, Any]] = []
        if not leads or not kinds:
            return done
        for lead in rng.sample(leads, k=min(len(leads), self.params.rep_actions)):
            kind = kinds[len(done) % len(kinds)] if len(done) < len(kinds) else rng.choice(kinds)
            lead_id = lead["Id"]
            if kind == "status":
                old = lead.get("Status")
                new = STATUS_MOVES.get(str(old), "Working - Contacted")
                sf.update("Lead", lead_id, {"Status": new})
                done.append({"action": "status", "lead_id": lead_id, "old": old, "new": new})
            elif kind == "disqualify":
                reason = rng.choice(DISQUALIFY_REASONS)
                sf.update("Lead", lead_id, {"Status": "Unqualified",
                                            "Disqualified_Reason__c": reason})
                done.append({"action": "disqualify", "lead_id": lead_id, "reason": reason})
            elif kind == "nurture":
                track = rng.choice(shipped().nurture_tracks)
                sf.update("Lead", lead_id, {"Nurture_Track__c": track})
                done.append({"action": "nurture", "lead_id": lead_id, "track": track})
            elif users:
                old_owner = lead.get("OwnerId")
                owner = rng.choice([u for u in users if u != old_owner] or users)
                sf.update("Lead", lead_id, {"OwnerId": owner})
                done.append({"action": "reassign", "lead_id": lead_id, "old": old_owner,
                             "new": owner})
        return done

    def calls(self) -> list[str]:
        rng, sf = self.rng, self.ctx.sf
        leads = self.open_leads()
        owners = sorted({str(lead.get("OwnerId")) for lead in leads if lead.get("OwnerId")})
        if not leads or not self.params.calls:
            return []
        rows = []
        for lead in rng.sample(leads, k=min(len(leads), self.params.calls)):
            when = self.moment()
            rows.append({"WhoId": lead["Id"], "Subject": "Call", "Type": "Call",
                         "CallDisposition": rng.choice(("Connected", "Left Voicemail",
                                                        "No Answer")),
                         "Status": "Completed", "ActivityDate": when.date(),
                         "OwnerId": lead.get("OwnerId") or owners[0], "TaskSubtype": "Call",
                         "CreatedDate": when})
        return list(sf.insert("Task", rows))

    def new_leads(self, seed: int) -> dict[str, list[Any]]:
        if not self.params.new_leads:
            return {"lead_ids": [], "hubspot_contact_ids": []}
        seeder = Seeder(self.ctx, 0, seed)
        seeder.emails = {str(r.get("Email") or "").lower() for r in self.ctx.sf.records("Lead")}
        companies = seeder.companies()
        reps = sorted({str(r["OwnerId"]) for r in self.ctx.sf.records("Lead")
                       if r.get("OwnerId")}) or [""]
        rows, people = [], []
        for _ in range(self.params.new_leads):
            person = seeder.person(self.rng.choice(companies))
            row = seeder.lead_row(person, reps)
            row.update(Status="Open - Not Contacted", LeadSource=self.rng.choice(LEAD_SOURCES),
                       CreatedDate=self.moment())
            row.pop("Disqualified_Reason__c", None)
            rows.append(row)
            people.append(person)
        lead_ids = self.ctx.sf.insert("Lead", rows)
        hs_ids = []
        for person in people:   # half also fill a HubSpot form: not yet linked by id
            if self.rng.random() < 0.5:
                record = self.ctx.hs.create("contacts", seeder.hs_props(person),
                                            created_at=self.moment(), system=True)
                hs_ids.append(record.id)
        return {"lead_ids": lead_ids, "hubspot_contact_ids": hs_ids}


def run_simulation(ctx: Context, params: SimulateParams) -> dict[str, Any]:
    """Advance the clock by the span and apply the simulated activity. Bad lead status
    changes raise ValueError before anything happens (the clock included)."""
    with ctx.lock:
        check_lead_statuses(ctx, params.lead_statuses)
        # Without an explicit seed, the n-th simulation since reset always does the same.
        ctx.simulations += 1
        seed = params.seed if params.seed is not None else 1000 + ctx.simulations
        sim = Simulation(ctx, params, seed)
        events = sim.web_events()
        actions = sim.rep_actions()
        calls = sim.calls()
        arrivals = sim.new_leads(seed)
        statuses = set_lead_statuses(ctx, params.lead_statuses)
        return {"from": sim.start.isoformat(), "now": sim.end.isoformat(), "seed": seed,
                "web_events": events, "rep_actions": actions, "call_task_ids": calls,
                "new_leads": arrivals, "lead_statuses": statuses}


def check_lead_statuses(ctx: Context, changes: list[LeadStatusChange]) -> None:
    """Each change names a live, unconverted lead and values the org's picklists allow."""
    lead = ctx.sf.schema.objects["Lead"]
    statuses = lead.fields["Status"].picklist
    reason_field = lead.fields.get("Disqualified_Reason__c")
    for n, change in enumerate(changes):
        record = ctx.sf.get("Lead", change.lead_id)
        where = f"lead_statuses[{n}] ({change.lead_id})"
        if record is None or record.get("IsDeleted") or record.get("IsConverted"):
            raise ValueError(f"{where}: no such open lead (deleted, converted or unknown id)")
        if change.status not in statuses:
            raise ValueError(f"{where}: status {change.status!r} is not one of the org's lead "
                             f"statuses: {', '.join(statuses)}")
        if change.reason is not None and (reason_field is None
                                          or change.reason not in reason_field.picklist):
            allowed = ", ".join(reason_field.picklist) if reason_field else "none (no field)"
            raise ValueError(f"{where}: reason {change.reason!r} is not a disqualified reason "
                             f"of this org: {allowed}")


def set_lead_statuses(ctx: Context, changes: list[LeadStatusChange]) -> list[dict[str, Any]]:
    """Apply checked changes as each lead's owner would (a person's edit, at the clock's
    now)."""
    done = []
    for change in changes:
        old = (ctx.sf.get("Lead", change.lead_id) or {}).get("Status")
        fields: dict[str, Any] = {"Status": change.status}
        if change.reason is not None:
            fields["Disqualified_Reason__c"] = change.reason
        ctx.sf.update("Lead", change.lead_id, fields)
        done.append({"lead_id": change.lead_id, "old": old, "new": change.status,
                     "reason": change.reason})
    return done
