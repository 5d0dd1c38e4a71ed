"""The seed's hidden buyer model: when each lead became a lead, and whether it converted.

A lead is created at its first touch (a visit, a form, a call, a campaign response), as
real leads are. Each buyer has a hidden propensity to convert that depends on fit, on how
far they went in their first weeks (demos, meetings and forms weigh more than page views) and
on how recently they were active then, plus noise. A buyer who converts does so some days
later: their HubSpot contact becomes an opportunity then (``Became an Opportunity Date``; the
lead itself stays open, so every seeded lead can still be edited). So ``export-persons`` on a
demo state DB has something to learn, and a backtest can tell a scoring that sees this signal
from one that does not. The weights are not part of any contract: tests must not read them.

It runs after every record and activity exists, reading them back from the org and the
portal, and draws from its own random stream, so the rest of the seed is unchanged.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from syncagent.sandbox.context import Context
from syncagent.sandbox.hubspot.portal import HsRecord
from syncagent.sandbox.hubspot.properties import iso_ms

FIRST_WEEKS = 14            # the days of a journey the propensity looks at
CONVERT_WITHIN = 30         # a conversion follows within this many days
# What a touch says about progress in the funnel (a demo says more than a page view).
PROGRESS = {"demo": 3.0, "meeting": 2.5, "form": 1.2, "webinar": 1.0, "call": 0.6,
            "pricing": 0.4, "campaign": 0.5, "click": 0.3, "visit": 0.1}
CLOSED_STATUSES = ("Unqualified", "Recycled", "Closed - Not Converted")
OPPORTUNITY_DATE = "hs_lifecyclestage_opportunity_date"
Touches = dict[str, list[tuple[datetime, str]]]


def _aware(value: Any) -> datetime | None:
    """A touch's moment: a datetime as stored, a date (a Task's ActivityDate) at noon UTC."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, 12, tzinfo=UTC)
    return None


def _salesforce_touches(ctx: Context, out: Touches) -> None:
    tables = ctx.sf.store.tables
    for task in tables["Task"].values():
        when = _aware(task.get("ActivityDate")) or _aware(task.get("CreatedDate"))
        if task.get("WhoId") and when and task.get("Type") == "Call":
            out[task["WhoId"]].append((when, "call"))
    for event in tables["Event"].values():
        when = _aware(event.get("StartDateTime"))
        if event.get("WhoId") and when:
            out[event["WhoId"]].append((when, "demo" if event.get("Type") == "Demo"
                                        else "meeting"))
    for member in tables["CampaignMember"].values():
        when = _aware(member.get("CreatedDate"))
        if member.get("LeadId") and when and member.get("Status") == "Responded":
            out[member["LeadId"]].append((when, "campaign"))


_EVENT_KINDS = {"e_submitted_form": "form", "e_clicked_email": "click",
                "e_attended_webinar": "webinar"}


def _event_kind(event_type: str, url: str) -> str | None:
    if event_type == "e_visited_page":
        return "pricing" if "/pricing" in url or "/demo" in url else "visit"
    return _EVENT_KINDS.get(event_type)


def _hubspot_touches(ctx: Context, out: Touches) -> None:
    contacts = ctx.hs.store("contacts").records
    lead_of = {cid: r.properties["salesforceleadid"] for cid, r in contacts.items()
               if r.properties.get("salesforceleadid")}
    for event in ctx.hs.events:
        lead = lead_of.get(event.object_id)
        kind = _event_kind(event.event_type, event.properties.get("hs_url", ""))
        if lead and kind:
            out[lead].append((event.occurred_at, kind))
    for object_type, kind in (("meetings", "meeting"), ("calls", "call")):
        for record in ctx.hs.store(object_type).records.values():
            for cid in record.associations.get("contacts", ()):
                if cid in lead_of:
                    out[lead_of[cid]].append((record.created_at, kind))


def _propensity(fit: float, visible: list[tuple[datetime, str]], snapshot: datetime,
                rng: random.Random) -> float:
    progress = sum(PROGRESS[kind] for _when, kind in visible)
    idle_days = (snapshot - visible[-1][0]).total_seconds() / 86_400 if visible else 99.0
    logit = (6.0 * (fit - 0.5) + 1.4 * math.log1p(progress) + 1.5 * math.exp(-idle_days / 5)
             - 2.8 + rng.gauss(0, 0.3))
    return 1 / (1 + math.exp(-logit))


def _journey(lead: dict[str, Any], contact: HsRecord | None, fit: float,
             touches: list[tuple[datetime, str]], rng: random.Random, now: datetime) -> bool:
    """Re-date the lead to its first touch; if its propensity says so, its HubSpot contact
    becomes an opportunity some days later (a deal in HubSpot, as marketing sees it)."""
    touches.sort()
    # whole seconds, as the org stores its timestamps
    created = (touches[0][0] - timedelta(days=rng.uniform(0.05, 2.0))).replace(microsecond=0)
    snapshot = created + timedelta(days=FIRST_WEEKS)
    visible = [t for t in touches if t[0] <= snapshot]
    chance = _propensity(fit, visible, snapshot, rng)
    converted_at = snapshot + timedelta(days=rng.uniform(0.5, CONVERT_WITHIN))
    converts = rng.random() < chance and converted_at < now - timedelta(hours=6) \
        and lead.get("Status") not in CLOSED_STATUSES and contact is not None
    lead["CreatedDate"] = created
    for stamp in ("LastModifiedDate", "SystemModstamp"):
        lead[stamp] = max(lead.get(stamp) or created, created)
    if converts and contact is not None:
        contact.properties[OPPORTUNITY_DATE] = iso_ms(converted_at)
    return converts


def buyer_journeys(ctx: Context, lead_ids: Sequence[str], fits: Sequence[float],
                   seed: int) -> dict[str, int]:
    """Re-date the seeded leads and make some buyers opportunities (ids and hidden fits in
    the same order)."""
    rng = random.Random(f"buyers:{seed}")
    touches: Touches = defaultdict(list)
    _salesforce_touches(ctx, touches)
    _hubspot_touches(ctx, touches)
    leads = ctx.sf.store.tables["Lead"]
    contact_of = {r.properties["salesforceleadid"]: r
                  for r in ctx.hs.store("contacts").records.values()
                  if r.properties.get("salesforceleadid")}
    now = ctx.clock.now()
    converted = journeys = 0
    for lead_id, fit in zip(lead_ids, fits, strict=False):
        if touches.get(lead_id):
            journeys += 1
            converted += _journey(leads[lead_id], contact_of.get(lead_id), fit,
                                  touches[lead_id], rng, now)
    ctx.sf.store.changed("Lead")
    return {"lead_journeys": journeys, "opportunities": converted}
