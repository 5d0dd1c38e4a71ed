"""Poison records: values real orgs and portals hold that break naive code.

`add_poison(ctx)` turns a few seeded leads and contacts into the hostile records the agent
must survive: a number of 400 digits, NaN and infinity in number fields, NUL bytes, lone
UTF-16 surrogates (as broken emoji arrive, escaped in JSON) and texts of a megabyte. They are
trusted edits (the org's own validation is bypassed, as data loaded long ago or by another
integration is). It returns what it changed so a test can expect each poison value once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from syncagent.sandbox.context import Context

MEGABYTE_TEXT = ("poison " * 150_000)[:1_000_000]

#: Salesforce Lead fields, per poisoned lead (in seed order of the open leads).
SF_POISON: tuple[dict[str, Any], ...] = (
    {"NumberOfEmployees": math.nan, "Title": "VP \ud800 Sales"},
    {"Company": "Acme\x00 Industries", "City": MEGABYTE_TEXT},
    {"AnnualRevenue": math.inf, "FirstName": "Z\udfffoe"},
)
#: HubSpot contact properties, per poisoned contact (contacts not linked to those leads).
HS_POISON: tuple[dict[str, str], ...] = (
    {"numberofemployees": "9" * 400, "jobtitle": "Head\x00of Growth"},
    {"company": MEGABYTE_TEXT, "lastname": "Lee\x00\x00"},
)


@dataclass(frozen=True)
class PoisonValue:
    system: str
    object: str
    record_id: str
    field: str


def add_poison(ctx: Context) -> list[PoisonValue]:
    """Poison a few leads and contacts in place; returns every poison value planted."""
    planted: list[PoisonValue] = []
    with ctx.lock:
        leads = [r for r in ctx.sf.records("Lead") if not r.get("IsConverted")]
        lead_emails = {str(r.get("Email") or "").lower() for r in leads[:len(SF_POISON)]}
        for lead, values in zip(leads, SF_POISON, strict=False):
            ctx.sf.update("Lead", lead["Id"], values, system=True)
            planted += [PoisonValue("salesforce", "Lead", lead["Id"], f) for f in values]
        contacts = [r for r in ctx.hs.store("contacts").records.values()
                    if not r.archived
                    and r.properties.get("email", "").lower() not in lead_emails]
        # Stamped an hour ago, as old data is: a fresh edit would wait out the agent's
        # lookback window before the first read saw it.
        when = ctx.clock.now() - timedelta(hours=1)
        for contact, props in zip(contacts, HS_POISON, strict=False):
            ctx.hs.update("contacts", contact.id, props, system=True, when=when)
            planted += [PoisonValue("hubspot", "contacts", str(contact.id), f) for f in props]
    return planted
